"""Buckets and objects on disk: S3-shaped operations with typed results.

Nothing here knows HTTP; the web layer knows nothing of paths on disk.
"""
