"""Where the native engine reads an image from. A source yields the config bytes and, per layer,
its diff ID and a way to read it; it knows nothing of registries."""
