"""History and audit: every change kept (who, when, what, why), every read of health data logged."""
