"""Activation: segments, segment membership history, and audience drops to S3 or a folder.

Modules, one concept each:

* :mod:`.segments`     segment definitions (``conf/segments.yaml``) and their evaluation
* :mod:`.membership`   ``gold.segment_membership`` history (MERGE) and size over time
* :mod:`.destinations` destination definitions (``conf/destinations.yaml``) and field shaping
* :mod:`.s3`           object stores (s3a/boto3 or a local folder) and per-bucket s3a settings
* :mod:`.manifest`     ``manifest.json`` of a drop
* :mod:`.export`       one drop per destination and segment, with ``ops.activation_log``
"""
