"""The push comparisons' tools: the measured commands (the pipe, `docker push`, the export, `skopeo copy`),
the images and archives they push, and the export-and-gzip floor run as its own process."""
