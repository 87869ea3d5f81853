"""The model architectures a spec may name, and the registry they are built through."""
