//! The profiles and overlay trees shipped inside pibake (`profiles/`, `overlays/` in the
//! repository), so a cluster can use them without copying them. A test checks that every
//! file of those directories is listed here.

/// `(name, text)` of every shipped profile.
pub const PROFILES: &[(&str, &str)] = &[
    ("base", include_str!("../../profiles/base.yaml")),
    (
        "clusterhat-controller",
        include_str!("../../profiles/clusterhat-controller.yaml"),
    ),
    (
        "clusterhat-controller-bridged",
        include_str!("../../profiles/clusterhat-controller-bridged.yaml"),
    ),
    (
        "clusterhat-gadget",
        include_str!("../../profiles/clusterhat-gadget.yaml"),
    ),
    (
        "clusterhat-zero",
        include_str!("../../profiles/clusterhat-zero.yaml"),
    ),
    (
        "clusterhat-zero-bridged",
        include_str!("../../profiles/clusterhat-zero-bridged.yaml"),
    ),
    (
        "container-worker",
        include_str!("../../profiles/container-worker.yaml"),
    ),
    ("head", include_str!("../../profiles/head.yaml")),
    ("k3s-agent", include_str!("../../profiles/k3s-agent.yaml")),
    ("k3s-node", include_str!("../../profiles/k3s-node.yaml")),
    ("k3s-server", include_str!("../../profiles/k3s-server.yaml")),
    ("mpi-node", include_str!("../../profiles/mpi-node.yaml")),
    (
        "portable-head",
        include_str!("../../profiles/portable-head.yaml"),
    ),
    (
        "portable-worker",
        include_str!("../../profiles/portable-worker.yaml"),
    ),
    (
        "slurm-compute",
        include_str!("../../profiles/slurm-compute.yaml"),
    ),
    (
        "slurm-controller",
        include_str!("../../profiles/slurm-controller.yaml"),
    ),
    ("slurm-node", include_str!("../../profiles/slurm-node.yaml")),
    (
        "swarm-manager",
        include_str!("../../profiles/swarm-manager.yaml"),
    ),
    ("swarm-node", include_str!("../../profiles/swarm-node.yaml")),
    ("web-head", include_str!("../../profiles/web-head.yaml")),
    ("web-worker", include_str!("../../profiles/web-worker.yaml")),
    ("worker", include_str!("../../profiles/worker.yaml")),
];

/// `(path, text)` of every file of the shipped overlay trees.
pub const OVERLAYS: &[(&str, &str)] = &[
    (
        "overlays/clusterhat-bridged/etc/NetworkManager/system-connections/pibake-br0-eth0.nmconnection",
        include_str!(
            "../../overlays/clusterhat-bridged/etc/NetworkManager/system-connections/pibake-br0-eth0.nmconnection"
        ),
    ),
    (
        "overlays/clusterhat-bridged/etc/NetworkManager/system-connections/pibake-br0-usb0.nmconnection",
        include_str!(
            "../../overlays/clusterhat-bridged/etc/NetworkManager/system-connections/pibake-br0-usb0.nmconnection"
        ),
    ),
    (
        "overlays/clusterhat-bridged/etc/NetworkManager/system-connections/pibake-br0.nmconnection",
        include_str!(
            "../../overlays/clusterhat-bridged/etc/NetworkManager/system-connections/pibake-br0.nmconnection"
        ),
    ),
    (
        "overlays/clusterhat-controller/etc/nftables.conf.hbs",
        include_str!("../../overlays/clusterhat-controller/etc/nftables.conf.hbs"),
    ),
    (
        "overlays/clusterhat-controller/etc/sysctl.d/90-pibake-forward.conf",
        include_str!("../../overlays/clusterhat-controller/etc/sysctl.d/90-pibake-forward.conf"),
    ),
    (
        "overlays/k3s/etc/systemd/system/k3s-agent.service",
        include_str!("../../overlays/k3s/etc/systemd/system/k3s-agent.service"),
    ),
    (
        "overlays/k3s/etc/systemd/system/k3s.service",
        include_str!("../../overlays/k3s/etc/systemd/system/k3s.service"),
    ),
    (
        "overlays/mpi-node/etc/openmpi/openmpi-default-hostfile.hbs",
        include_str!("../../overlays/mpi-node/etc/openmpi/openmpi-default-hostfile.hbs"),
    ),
    (
        "overlays/mpi-node/etc/openmpi/openmpi-mca-params.conf.hbs",
        include_str!("../../overlays/mpi-node/etc/openmpi/openmpi-mca-params.conf.hbs"),
    ),
    (
        "overlays/mpi-node/usr/local/share/teaching-mpi/hello.py",
        include_str!("../../overlays/mpi-node/usr/local/share/teaching-mpi/hello.py"),
    ),
    (
        "overlays/mpi-node/usr/local/share/teaching-mpi/merge_sort.py",
        include_str!("../../overlays/mpi-node/usr/local/share/teaching-mpi/merge_sort.py"),
    ),
    (
        "overlays/portable-head/etc/dnsmasq.d/pibake-cluster.conf.hbs",
        include_str!("../../overlays/portable-head/etc/dnsmasq.d/pibake-cluster.conf.hbs"),
    ),
    (
        "overlays/portable-head/etc/exports.hbs",
        include_str!("../../overlays/portable-head/etc/exports.hbs"),
    ),
    (
        "overlays/portable-head/etc/nftables.conf.hbs",
        include_str!("../../overlays/portable-head/etc/nftables.conf.hbs"),
    ),
    (
        "overlays/portable-head/etc/sysctl.d/90-pibake-forward.conf",
        include_str!("../../overlays/portable-head/etc/sysctl.d/90-pibake-forward.conf"),
    ),
    (
        "overlays/portable-head/srv/share/README",
        include_str!("../../overlays/portable-head/srv/share/README"),
    ),
    (
        "overlays/portable-worker/etc/auto.master.d/pibake-cluster.autofs.hbs",
        include_str!("../../overlays/portable-worker/etc/auto.master.d/pibake-cluster.autofs.hbs"),
    ),
    (
        "overlays/portable-worker/etc/auto.pibake-cluster.hbs",
        include_str!("../../overlays/portable-worker/etc/auto.pibake-cluster.hbs"),
    ),
    (
        "overlays/slurm-node/usr/local/share/slurm/merge-sort.sbatch",
        include_str!("../../overlays/slurm-node/usr/local/share/slurm/merge-sort.sbatch"),
    ),
    (
        "overlays/swarm/etc/systemd/system/pibake-swarm.service",
        include_str!("../../overlays/swarm/etc/systemd/system/pibake-swarm.service"),
    ),
    (
        "overlays/swarm/usr/local/lib/pibake/swarm.sh",
        include_str!("../../overlays/swarm/usr/local/lib/pibake/swarm.sh"),
    ),
    (
        "overlays/web-head/etc/apache2/sites-available/pibake-balancer.conf.hbs",
        include_str!(
            "../../overlays/web-head/etc/apache2/sites-available/pibake-balancer.conf.hbs"
        ),
    ),
    (
        "overlays/web-head/srv/site/README",
        include_str!("../../overlays/web-head/srv/site/README"),
    ),
    (
        "overlays/web-worker/etc/systemd/system/pibake-site-pull.service",
        include_str!("../../overlays/web-worker/etc/systemd/system/pibake-site-pull.service"),
    ),
    (
        "overlays/web-worker/etc/systemd/system/pibake-site-pull.timer.hbs",
        include_str!("../../overlays/web-worker/etc/systemd/system/pibake-site-pull.timer.hbs"),
    ),
    (
        "overlays/web-worker/usr/local/bin/pibake-site-pull.sh.hbs",
        include_str!("../../overlays/web-worker/usr/local/bin/pibake-site-pull.sh.hbs"),
    ),
    (
        "overlays/web-worker/var/www/html/index.html.hbs",
        include_str!("../../overlays/web-worker/var/www/html/index.html.hbs"),
    ),
];

/// The text of the shipped profile `name`, if there is one.
pub fn profile(name: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The names of the shipped profiles, in [`PROFILES`] order.
pub fn profile_names() -> impl Iterator<Item = &'static str> {
    PROFILES.iter().map(|(n, _)| *n)
}
