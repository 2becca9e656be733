// Command local-volume-provisioner gives the local cluster's default StorageClass dynamic
// provisioning: each claim gets a directory on this node, handed out as a `local`
// PersistentVolume. It exists because the in-tree hostPath provisioner creates root-owned
// 0750 directories and hostPath volumes ignore fsGroup, so a pod running as a non-root uid
// (restricted Pod Security) could not write to them; kubelet does apply fsGroup to `local`
// volumes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v11/controller"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "local-volume-provisioner:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("local-volume-provisioner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	name := fs.String("provisioner", "goapp.local/local-volume", "provisioner name that StorageClasses refer to")
	node := fs.String("node", "", "name of the node whose directories back the volumes (required)")
	base := fs.String("base-dir", "", "absolute directory under which volume directories are created (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *node == "" || *base == "" {
		return errors.New("-kubeconfig, -node and -base-dir are required")
	}
	if !filepath.IsAbs(*base) {
		return fmt.Errorf("-base-dir %q must be an absolute path", *base)
	}
	if err := os.MkdirAll(*base, 0o755); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", *kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	p := &dirProvisioner{node: *node, base: filepath.Clean(*base)}
	// One provisioner on one node: leader election would only add a Lease to the cluster.
	pc := controller.NewProvisionController(ctx, client, *name, p, controller.LeaderElection(false))
	klog.FromContext(ctx).Info("provisioning", "provisioner", *name, "node", *node, "baseDir", p.base)
	pc.Run(ctx)
	return nil
}

type dirProvisioner struct {
	node string
	base string
}

func (p *dirProvisioner) Provision(_ context.Context, o controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	if o.SelectedNode != nil && o.SelectedNode.Name != p.node {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim is scheduled to node %q; this provisioner only serves node %q", o.SelectedNode.Name, p.node)
	}
	dir := filepath.Join(p.base, o.PVName)
	// Root-owned and not world-writable: kubelet hands the directory to the pod's fsGroup.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, controller.ProvisioningFinished, fmt.Errorf("create volume directory: %w", err)
	}
	reclaim := v1.PersistentVolumeReclaimDelete
	if o.StorageClass.ReclaimPolicy != nil {
		reclaim = *o.StorageClass.ReclaimPolicy
	}
	mode := v1.PersistentVolumeFilesystem
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.PVName},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   o.PVC.Spec.AccessModes,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: o.PVC.Spec.Resources.Requests[v1.ResourceStorage]},
			StorageClassName:              o.StorageClass.Name,
			MountOptions:                  o.StorageClass.MountOptions,
			VolumeMode:                    &mode,
			PersistentVolumeSource: v1.PersistentVolumeSource{
				Local: &v1.LocalVolumeSource{Path: dir},
			},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
					Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{p.node},
				}}}},
			}},
		},
	}
	return pv, controller.ProvisioningFinished, nil
}

func (p *dirProvisioner) Delete(_ context.Context, pv *v1.PersistentVolume) error {
	if pv.Spec.Local == nil {
		return &controller.IgnoredError{Reason: "not a local volume"}
	}
	dir := filepath.Clean(pv.Spec.Local.Path)
	if !strings.HasPrefix(dir, p.base+string(filepath.Separator)) {
		return &controller.IgnoredError{Reason: fmt.Sprintf("path %s is outside %s", dir, p.base)}
	}
	return os.RemoveAll(dir)
}
