"""Reference data OpenHMO ships: ZIP codes and counties, taxonomy, code lists, fee schedules."""
