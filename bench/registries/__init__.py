"""The registries the bench measures and how it addresses them: the embedded one and distribution 2.8 as blob
targets, their figures side by side, the purge of measured blobs, and the UI phase's big seeded workspace."""
