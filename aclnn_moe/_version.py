"""The package version, written only here: pyproject.toml (scikit-build-core's regex provider) and the top-level
CMakeLists.txt (the libraries' ACLNN_MOE_VERSION) both read it from this line."""
__version__ = "0.1.0"
