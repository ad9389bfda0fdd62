#!/usr/bin/env bash
# End-to-end: the shipped portable cluster works as one. Builds its head and one worker
# (worker5, known to the head's DHCP server by its MAC alone) from the e2e base, boots
# them together (tests/e2e/lib.sh): the head's eth0 on a QEMU user-mode network of its
# own (`restrict=on`: its only way "out" is one forwarded port that answers like a web
# server), its eth1 and the worker's eth0 on the cluster segment. Checks:
#   - the worker gets its reserved address from the head's dnsmasq (nothing else hands
#     out addresses) and resolves the cluster's names through the head's DNS;
#   - the worker reaches the outside through the head's NAT; a host on the segment
#     without a cluster address does not (the head drops it, and logs the drop); from
#     the outside the head answers SSH but not NFS;
#   - the head's NFS export is automounted on the worker by autofs, both ways;
#   - SSH head -> worker -> head with the keys and known hosts pibake baked, no prompt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init

# The harness is a host on the cluster segment with a cluster address (.254, which no
# node has), and a stranger's address beside it.
netns_up 10.10.0.254/24 192.168.77.5/24
cluster=$(cluster_file portable-cluster "$work/cluster" '/^  - name: "worker\[1-4\]"$/,+2d')
grep -q 'name: worker5, role: worker, mac: { eth0: "dc:a6:32:00:00:05" }' "$cluster" ||
  fail "the example's worker5 (reserved by MAC) changed shape"
out="$work/out"
"$pibake" build "$cluster" --out "$out" --quiet >/dev/null
worker_addr=$("$pibake" plan "$cluster" --json | python3 -c \
  'import json,sys; print([n for n in json.load(sys.stdin)["nodes"] if n["node"]=="worker5"][0]["addresses"]["lan"])')

# "Outside": every connection to 10.0.2.100:80 runs this script, which logs the request
# line and answers. With restrict=on nothing else leaves the user-mode network.
cat >"$work/outside.sh" <<EOF
#!/bin/sh
read -r line
echo "\$line" >>"$work/outside.log"
# The rest of the request, up to its blank line: unread, it would reset the connection.
while read -r header && [ -n "\$(printf '%s' "\$header" | tr -d '\r')" ]; do :; done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from outside\n'
EOF
chmod +x "$work/outside.sh"
: >"$work/outside.log"
outside="restrict=on,net=10.0.2.0/24,guestfwd=tcp:10.0.2.100:80-cmd:$work/outside.sh"
outside="$outside,hostfwd=tcp:127.0.0.1:10022-:22,hostfwd=tcp:127.0.0.1:12049-:2049"

vm_start head "$out/head.img" 10.10.0.1 "" "$outside"
vm_ssh head 900
# Powered on while the head is still installing its software: the worker keeps asking
# for its lease until the head's dnsmasq answers.
vm_start worker5 "$out/worker5.img" "$worker_addr" dc:a6:32:00:00:05
vm_wait head 900
vm_wait worker5 900

# DHCP: the reserved address, from the head.
node=worker5
got=$(on worker5 ip -4 -o addr show dev eth0) || fail "no eth0 on the worker"
[[ "$got" == *" $worker_addr/24 "* && "$got" == *dynamic* ]] ||
  fail "eth0 does not hold the reserved $worker_addr by DHCP: $got"
node=head
lease=$(on head cat /var/lib/misc/dnsmasq.leases) || fail "the head's dnsmasq has no lease file"
[[ "$lease" == *"dc:a6:32:00:00:05 $worker_addr worker5"* ]] ||
  fail "the head's dnsmasq did not lease $worker_addr to worker5: $lease"
say "worker5: $worker_addr by DHCP from the head's dnsmasq (reserved by MAC)"

# DNS: the cluster's names through the head only (`-s dns` skips /etc/hosts).
node=worker5
for name in head head.portable.lan worker5.portable.lan; do
  got=$(on worker5 getent -s dns hosts "$name") || fail "the head's DNS does not resolve $name"
  want=10.10.0.1
  [ "$name" = worker5.portable.lan ] && want=$worker_addr
  [ "${got%% *}" = "$want" ] || fail "$name resolved to '$got' through the head's DNS, not $want"
done
say "worker5: head, head.portable.lan, worker5.portable.lan resolved by the head's DNS"

# NAT: the worker reaches the outside through the head (bash's /dev/tcp: no curl there).
got=$(on worker5 "timeout 20 bash -c 'exec 3<>/dev/tcp/10.0.2.100/80; printf \"GET /from-worker5 HTTP/1.0\r\n\r\n\" >&3; cat <&3'") ||
  fail "the worker cannot reach the outside through the head"
[[ "$got" == *"hello from outside"* ]] || fail "the outside's answer did not come back: $got"
grep -q "GET /from-worker5" "$work/outside.log" || fail "the outside never saw the worker's request"
say "worker5: reached the outside through the head's NAT"

# The head forwards only the cluster's own addresses: the same request from the
# harness gets through from its cluster address, not from the stranger's.
node=head
in_ns ip route add 10.0.2.0/24 via 10.10.0.1
in_ns curl -fsS --max-time 20 --interface 10.10.0.254 http://10.0.2.100/from-cluster-address >/dev/null ||
  fail "a cluster address on the segment cannot reach the outside through the head"
if in_ns curl -fsS --max-time 8 --interface 192.168.77.5 http://10.0.2.100/from-stranger >/dev/null 2>&1; then
  fail "the head forwarded a stranger's connection to the outside"
fi
grep -q "GET /from-stranger" "$work/outside.log" && fail "the outside saw the stranger's request"
on head "sudo -n journalctl -k -b --no-pager | grep -q 'pibake-forward-drop: .*SRC=192.168.77.5'" ||
  fail "the head did not drop (and log) the stranger's connection"
say "head: forwarded 10.10.0.254 out, dropped (and logged) 192.168.77.5"

# From the outside: SSH answers (with the recorded host key), NFS does not. An NFS NULL
# call is answered on the inside address, so its silence outside is the firewall's.
got=$(in_ns ssh -n -F /dev/null -i "$work/admin_key" -p 10022 -o BatchMode=yes \
  -o ConnectTimeout=20 -o LogLevel=ERROR -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile="$out/known_hosts" -o HostKeyAlias=head ops@127.0.0.1 hostname) ||
  fail "SSH to the head from the outside network does not work"
[ "$got" = head ] || fail "SSH from the outside reached '$got'"
nfs_null() { # HOST PORT: exit 0 when an NFSv3 NULL call over TCP is answered
  in_ns python3 - "$@" <<'EOF'
import socket, struct, sys
call = struct.pack(">10I", 0x5eed, 0, 2, 100003, 3, 0, 0, 0, 0, 0)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
try:
    s.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)
    reply = s.recv(64)
except OSError:
    sys.exit(1)
sys.exit(0 if len(reply) >= 12 and struct.unpack(">3I", reply[:12])[1:] == (0x5eed, 1) else 1)
EOF
}
nfs_null 10.10.0.1 2049 || fail "the head's NFS server does not answer on the cluster network"
nfs_null 127.0.0.1 12049 && fail "the head's NFS server answers on the outside network"
say "head: SSH answers from the outside, NFS only inside"

# NFS through autofs, both ways.
on head "sudo -n sh -c 'mkdir -p /srv/share/data && chmod 1777 /srv/share/data && echo written on head >/srv/share/data/hello'" ||
  fail "cannot write into the head's export"
node=worker5
got=$(on worker5 cat /cluster/data/hello) || fail "the head's export is not automounted on /cluster/data"
[ "$got" = "written on head" ] || fail "/cluster/data/hello on the worker says '$got'"
fstype=$(on worker5 findmnt -n -o FSTYPE,SOURCE /cluster/data) || fail "/cluster/data is not a mount"
[[ "$fstype" == nfs* && "$fstype" == *"10.10.0.1:/srv/share/data"* ]] ||
  fail "/cluster/data is '$fstype', not the head's NFS export"
on worker5 "echo written on worker5 >/cluster/data/from-worker5" || fail "the worker cannot write to the export"
node=head
got=$(on head cat /srv/share/data/from-worker5) || fail "the worker's file is not on the head"
[ "$got" = "written on worker5" ] || fail "the worker's file on the head says '$got'"
say "worker5: /cluster/data is the head's export ($fstype), read and written"

# The cluster's own SSH: head -> worker5 -> head, strict host key checking, no prompt.
strict="-o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=20"
got=$(on head "ssh $strict worker5 ssh $strict head hostname") ||
  fail "SSH head -> worker5 -> head failed"
[ "$got" = head ] || fail "SSH head -> worker5 -> head reached '$got'"
say "SSH head -> worker5 -> head: no password, no host-key prompt"

for n in worker5 head; do vm_halt "$n"; done
say "portable cluster: all checks passed"
