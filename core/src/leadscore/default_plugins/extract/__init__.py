"""Built-in signal extractors: email, title, firmographics, activities and CRM fields (step 1: extract)."""
