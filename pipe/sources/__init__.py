"""Where the native engine reads an image from. Each source is one module with a `Source` (image.py):
the daemon's export (daemon_export.py) and an archive or OCI layout (archive.py, reading its files
with archive_files.py, archive_images.py and archive_layers.py). Sources know nothing of registries."""
