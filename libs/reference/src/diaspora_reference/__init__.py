"""Reference data shipped in the repository, read without any network call.

Each data set keeps the acknowledgement its publisher asks for in
``data/NOTICE.md``; modules load their files lazily and cache them.
"""
