"""Transfer operators: Perkville data moved into other systems (Airflow's ``transfers`` habit)."""
