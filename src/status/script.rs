//! The status script: run on each node by `sh -s` over SSH, read-only, the same text
//! for every node.
//!
//! Nothing of the inventory is ever pasted into it: what a node should have (its units,
//! its packages) stays on the operator's side, and the script reports what the node
//! has. It prints `key=value` lines; free text that could hold anything (log tails, a
//! cluster tool's answer) is base64 on one line, so no node can add a line of its own.
//! Every command that could hang is bounded by `timeout`; `sudo -n` never asks.

/// The script. Keys, in order: `pibake_status` (format version, first), `hostname`,
/// `firstboot_done`, `firstboot_unit` (`LoadState=... ActiveState=... Result=...`), `firstboot_steps`
/// and `firstboot_steps_done` (step names), `firstboot_log` and `firstboot_journal`
/// (base64 tails), `system` (`systemctl is-system-running`), `failed_unit` (one line
/// each), `unit` (one line per enabled unit: ActiveState SubState Result
/// ConditionResult Type Names...), `pkg` (Package Version Status-Abbrev), `root`
/// (partition start size disk-size filesystem-bytes), `cluster`, `cluster_ok`,
/// `cluster_view` (base64), `now` (`date +%s`, last but one), `end`.
pub const SCRIPT: &str = r#"# pibake status: reads, never changes, this node.
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
b64() { base64 -w0 2>/dev/null; echo; }
t() { timeout 20 "$@"; }
asroot() { o=$(t "$@" 2>&1) && { printf '%s\n' "$o"; return 0; }; t sudo -n "$@" 2>&1; }
echo pibake_status=1
echo "hostname=$(hostname 2>/dev/null)"
if [ -e /var/lib/pibake/firstboot.done ]; then echo firstboot_done=yes; else echo firstboot_done=no; fi
echo "firstboot_unit=$(t systemctl show -p LoadState -p ActiveState -p Result pibake-firstboot.service 2>/dev/null | tr '\n' ' ')"
echo "firstboot_steps=$(ls /usr/local/lib/pibake/firstboot.d 2>/dev/null | sed -n 's/\.sh$//p' | tr '\n' ' ')"
echo "firstboot_steps_done=$(ls /var/lib/pibake/firstboot.state 2>/dev/null | sed -n 's/\.done$//p' | tr '\n' ' ')"
echo "firstboot_log=$(tail -n 20 /var/lib/pibake/firstboot.log 2>/dev/null | b64)"
if [ ! -e /var/lib/pibake/firstboot.done ]; then
  j=$(t journalctl -q -b -u pibake-firstboot.service -n 20 --no-pager -o cat 2>/dev/null)
  [ -n "$j" ] || j=$(t sudo -n journalctl -q -b -u pibake-firstboot.service -n 20 --no-pager -o cat 2>/dev/null)
  echo "firstboot_journal=$(printf '%s\n' "$j" | b64)"
fi
echo "system=$(t systemctl is-system-running 2>/dev/null)"
t systemctl list-units --failed --plain --no-legend 2>/dev/null | awk '$1 != "" { print "failed_unit=" $1 }'
# Enabled units from their links, not `systemctl list-unit-files`: unprivileged, that
# asks systemd over D-Bus and timed out on a slow (emulated) node.
units=$(for l in /etc/systemd/system/*.wants/* /etc/systemd/system/*.requires/*; do [ -L "$l" ] && echo "${l##*/}"; done | awk '$1 !~ /@\./' | sort -u)
[ -z "$units" ] || t systemctl show -p Names -p ActiveState -p SubState -p Result -p ConditionResult -p Type $units 2>/dev/null | awk '
  function v(x) { return x == "" ? "-" : x }
  function flush() { if (n != "") print "unit=" v(a) " " v(s) " " v(r) " " v(c) " " v(ty) " " n; n = a = s = r = c = ty = "" }
  /^$/ { flush(); next }
  { k = substr($0, 1, index($0, "=") - 1); x = substr($0, index($0, "=") + 1) }
  k == "Names" { n = x } k == "ActiveState" { a = x } k == "SubState" { s = x }
  k == "Result" { r = x } k == "ConditionResult" { c = x } k == "Type" { ty = x }
  END { flush() }'
t dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n' 2>/dev/null | sed 's/^/pkg=/'
p=$(findmnt -no SOURCE / 2>/dev/null); p=${p#/dev/}
if [ -n "$p" ] && [ -r "/sys/class/block/$p/start" ]; then
  d=$(basename "$(readlink -f "/sys/class/block/$p/..")")
  echo "root=$p $(cat "/sys/class/block/$p/start") $(cat "/sys/class/block/$p/size") $(cat "/sys/class/block/$d/size") $(df -B1 --output=size / 2>/dev/null | tail -n 1 | tr -d ' ')"
fi
if grep -qx 'SWARM_JOIN_AS=manager' /etc/pibake/swarm.env 2>/dev/null; then
  echo cluster=swarm
  if v=$(asroot docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'); then echo cluster_ok=yes; else echo cluster_ok=no; fi
  echo "cluster_view=$(printf '%s\n' "$v" | b64)"
elif systemctl is-enabled --quiet k3s.service 2>/dev/null; then
  echo cluster=k3s
  if v=$(asroot k3s kubectl get nodes --no-headers); then echo cluster_ok=yes; else echo cluster_ok=no; fi
  echo "cluster_view=$(printf '%s\n' "$v" | b64)"
elif systemctl is-enabled --quiet slurmctld.service 2>/dev/null; then
  # A compute that takes jobs (idle, allocated, mixed, completing) is Ready.
  echo cluster=slurm
  if v=$(sinfo -h -N -o '%N %T' 2>&1); then echo cluster_ok=yes; else echo cluster_ok=no; fi
  v=$(printf '%s\n' "$v" | awk 'NF == 2 { print $1, ($2 ~ /^(idle|allocated|mixed|completing)$/ ? "Ready" : $2) } NF != 2' | sort -u)
  echo "cluster_view=$(printf '%s\n' "$v" | b64)"
fi
echo "now=$(date +%s)"
echo end=1
"#;
