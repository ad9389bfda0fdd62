#!/usr/bin/env bash
# End-to-end: the shipped web cluster works as a web cluster. Builds its load balancer and
# two workers from the e2e base (their apache2 and curl resolved by pibake against the
# base's own Debian sources, locked and baked in), boots all three at once on one
# virtual segment (tests/e2e/lib.sh) with no way out, and checks:
#   - each node installed its baked packages on first boot with no network, at the
#     versions pibake.lock holds, and removed the .debs; each worker serves the page
#     its overlay templated;
#   - the balancer serves the site, and successive requests are answered by both
#     workers in turn (each worker's page names it, rendered from the inventory);
#   - /balancer-manager lists both members, and answers only from the admin subnet;
#   - with Apache stopped on one worker, the balancer keeps serving from the other;
#   - a site tarball published on the head is pulled by the workers' timer (its period
#     shortened through the example's `site_pull_every` variable) and then served.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_init

# The bridge is the cluster's gateway, and also holds an address in the admin subnet
# (`vars.admin_subnet`), so the harness can ask from inside and outside it.
netns_up 192.168.50.1/24 192.168.1.1/24
cluster=$(cluster_file web-cluster "$work/cluster" \
  's|^  - { name: "web\[01-04\]", role: worker }$|  - { name: "web[01-02]", role: worker }|' \
  's|^  site_pull_every: .*|  site_pull_every: 10s|')
out="$work/out"
"$pibake" build "$cluster" --out "$out" --quiet >/dev/null
[ -s "$work/cluster/pibake.lock" ] || fail "the build wrote no pibake.lock"

vm_start lb "$out/lb.img" 192.168.50.10
vm_start web01 "$out/web01.img" 192.168.50.11
vm_start web02 "$out/web02.img" 192.168.50.12
for n in lb web01 web02; do vm_wait "$n" 900; done

# The role software: installed offline at the locked versions, the .debs gone.
packages_locked lb apache2
for n in web01 web02; do packages_locked "$n" apache2 curl; done
for n in web01 web02; do
  node=$n
  got=$(on "$n" curl -fsS http://localhost/) || fail "Apache does not answer on the node itself"
  [[ "$got" == *"Served by $n ("* ]] || fail "the node's own page is not the one its overlay templated: $got"
done
say "lb, web01, web02: apache2 (and curl on the workers) at the locked versions, installed offline; each worker serves its templated page"

# Through the balancer: both workers, in turn.
node=lb
served=""
for _ in 1 2 3 4; do
  page=$(in_ns curl -fsS --max-time 20 http://192.168.50.10/) || fail "the balancer does not answer"
  [[ "$page" =~ Served\ by\ (web0[12]) ]] || fail "the balancer's answer is not a worker's page: $page"
  served="$served ${BASH_REMATCH[1]}"
done
[[ "$served" == *web01* && "$served" == *web02* ]] || fail "four requests were not shared by both workers:$served"
say "balancer: four requests answered by$served"

# The manager: both members, from the admin subnet only.
got=$(in_ns curl -sS --max-time 20 --interface 192.168.1.1 http://192.168.50.10/balancer-manager) ||
  fail "no answer from /balancer-manager"
[[ "$got" == *"http://192.168.50.11"* && "$got" == *"http://192.168.50.12"* ]] ||
  fail "/balancer-manager does not list both workers: $(head -c 400 <<<"$got")"
code=$(in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 20 --interface 192.168.50.1 http://192.168.50.10/balancer-manager)
[ "$code" = 403 ] || fail "/balancer-manager answered $code to an address outside the admin subnet, not 403"
say "balancer-manager: both members listed from 192.168.1.1; 403 from 192.168.50.1"

# One worker down: the other serves everything.
node=web01
on web01 sudo -n systemctl stop apache2 || fail "cannot stop Apache on web01"
node=lb
for _ in 1 2 3 4; do
  page=$(in_ns curl -fsS --max-time 30 http://192.168.50.10/) || fail "the balancer stopped serving with web01 down"
  [[ "$page" == *"Served by web02"* ]] || fail "with web01 down the answer was: $page"
done
say "web01 down: the balancer served four requests from web02"
on web01 sudo -n systemctl start apache2 || fail "cannot start Apache on web01 again"

# The update path: publish a site on the head; the workers pull and serve it.
on lb "sudo -n sh -c 'mkdir -p /tmp/site && echo \"<p>site version 2</p>\" >/tmp/site/news.html && tar -czf /srv/site/site.tar.gz -C /tmp/site news.html'" ||
  fail "cannot publish the site tarball on the head"
for w in web01:192.168.50.11 web02:192.168.50.12; do
  node=${w%%:*}
  start=$SECONDS
  until got=$(in_ns curl -fsS --max-time 10 "http://${w#*:}/news.html" 2>/dev/null) && [ "$got" = "<p>site version 2</p>" ]; do
    [ $((SECONDS - start)) -lt 180 ] || fail "the worker did not pull the published site within 180 s (timer: $(on "$node" systemctl list-timers --no-legend pibake-site-pull.timer))"
    sleep 5
  done
  say "$node: pulled the published site after $((SECONDS - start)) s"
done
node=lb
for _ in 1 2; do
  got=$(in_ns curl -fsS --max-time 20 http://192.168.50.10/news.html) || fail "the balancer does not serve the new page"
  [ "$got" = "<p>site version 2</p>" ] || fail "the balancer served '$got' for the new page"
done
say "balancer: serves the published site"

for n in lb web01 web02; do vm_halt "$n"; done
say "web cluster: all checks passed"
