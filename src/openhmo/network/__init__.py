"""The provider network: providers, locations, organizations, contracts and fee schedules."""
