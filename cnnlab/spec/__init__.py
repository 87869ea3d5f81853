"""The train spec, and the checks a spec passes before it may train (data, budget)."""
