"""What the tests use and bench/ does not: running the pipe, a raw OCI client, the browser, image archives,
fault-injecting proxies, polling. The processes both start (registries, daemons, images) are in harness/."""
