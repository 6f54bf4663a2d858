# Generated from crates/api/src/manifests.rs by `cargo run -p dbaas-api --bin packagegen`. Do not edit.
FROM scratch
LABEL operators.operatorframework.io.bundle.channel.default.v1=alpha
LABEL operators.operatorframework.io.bundle.channels.v1=alpha
LABEL operators.operatorframework.io.bundle.manifests.v1=manifests/
LABEL operators.operatorframework.io.bundle.mediatype.v1=registry+v1
LABEL operators.operatorframework.io.bundle.metadata.v1=metadata/
LABEL operators.operatorframework.io.bundle.package.v1=dbaas-operator
COPY bundle/manifests /manifests/
COPY bundle/metadata /metadata/
