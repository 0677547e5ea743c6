"""Reference data OpenHMO ships: ZIP codes and counties, provider taxonomy, code lists, fee schedules."""
