"""Supply chain checks the promotion runs before a digest may enter a stage (scripts/promote.py promote).

refs       parse `<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<hex>` and name cosign's companion tags
ecr_images the ECR calls promotion needs: the digest, manifests, (immutable) tags, blobs, images, lifecycle policy
verifier   the Verifier interface, the predicate types a release must carry, and the real `cosign` CLI verifier
cosign_key cosign's key-based signature / attestation format, verified in-process (offline tests, key-based setups)
referrers  the SLSA provenance bundle attest-build-provenance attaches to a digest (an untagged OCI referrer)
retention  would the lifecycle expire a digest right after its promotion (outside the stage's window)
promotion  verify every image, then tag digest + .sig + .att + .prov with the release tag; all or nothing
"""
