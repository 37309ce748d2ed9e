"""Reference data for profile forms: occupations, skills and cities by a few letters."""
