"""Raw blob traffic for the registry phases: the random data, a lean HTTP client, many small concurrent
uploads, and the machine's ceilings (SHA-256, page-cache writes) measured beside them."""
