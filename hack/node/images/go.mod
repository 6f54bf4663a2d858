// Helpers of hack/node/images/build.sh: ocitool (rootfs directory -> OCI
// image archive) and pause (the sandbox image's binary). Standard library
// only, so building them needs nothing from the module proxy.
module dbaas-operator/hack/node/images

go 1.26.0
