"""The Perkville model: one definition of each field and record, and the API's conventions."""
