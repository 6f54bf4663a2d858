package main

// A local volume provisioner for the node: a PersistentVolumeClaim of the
// dbaas-local StorageClass gets a directory under DIR/node/volumes and a
// hostPath PersistentVolume bound to it; a released volume of ours is
// deleted with its directory. The directories are world-writable because
// hostPath volumes get no fsGroup ownership, and databases run as their own
// uid (PostgreSQL as 26).

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"

func runProvisioner(ctx context.Context, cs kubernetes.Interface, root string) {
	for {
		if err := provisionOnce(ctx, cs, root); err != nil && ctx.Err() == nil {
			logf("provisioner: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func provisionOnce(ctx context.Context, cs kubernetes.Interface, root string) error {
	pvcs, err := cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil || pvc.Status.Phase != corev1.ClaimPending {
			continue
		}
		if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != storageClassName {
			continue
		}
		if err := provision(ctx, cs, root, pvc); err != nil {
			logf("provisioner: %s/%s: %v", pvc.Namespace, pvc.Name, err)
		}
	}
	pvs, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.Annotations[provisionedByAnnotation] != provisionerName || pv.Status.Phase != corev1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.HostPath == nil {
			continue
		}
		path := pv.Spec.HostPath.Path
		if !strings.HasPrefix(path, root+"/") { // only directories we made
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			logf("provisioner: removing %s: %v", path, err)
			continue
		}
		err := cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			logf("provisioner: deleting %s: %v", pv.Name, err)
		}
	}
	return nil
}

func provision(ctx context.Context, cs kubernetes.Interface, root string, pvc *corev1.PersistentVolumeClaim) error {
	name := "pvc-" + string(pvc.UID)
	if _, err := cs.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil // made already; the PV controller binds it
	}
	dir := filepath.Join(root, pvc.Namespace+"_"+pvc.Name+"_"+string(pvc.UID))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o777); err != nil { // the umask narrowed MkdirAll's mode
		return err
	}
	capacity := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	hostPathType := corev1.HostPathDirectory
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{provisionedByAnnotation: provisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: capacity},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              storageClassName,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
		},
	}
	_, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: "controlplane"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	logf("provisioner: %s for %s/%s at %s", name, pvc.Namespace, pvc.Name, dir)
	return nil
}
