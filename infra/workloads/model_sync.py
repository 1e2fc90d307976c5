"""The embedder's init container program: copy the model weights from the `models` bucket into the pod.

Runs with `python -c` in an image that has python and boto3 (the worker image by default), with the embedder's
IRSA credentials (read-only on the models bucket). Refuses object keys that would escape the target directory.
"""

from __future__ import annotations

SCRIPT = """\
import os, pathlib, sys
import boto3
bucket, prefix = os.environ["MODEL_BUCKET"], os.environ["MODEL_PREFIX"].strip("/") + "/"
target = pathlib.Path(os.environ["MODEL_DIR"]).resolve()
s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION"))
count = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for obj in page.get("Contents", []):
        rel = obj["Key"][len(prefix):]
        if not rel or rel.endswith("/"):
            continue
        dest = (target / rel).resolve()
        if not dest.is_relative_to(target):
            sys.exit(f"refusing object key outside the model directory: {obj['Key']!r}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj["Key"], str(dest))
        count += 1
if count == 0:
    sys.exit(f"no model files under s3://{bucket}/{prefix}")
print(f"synced {count} files from s3://{bucket}/{prefix} to {target}")
"""
