#!/bin/sh
# Written by pibake: forms the Docker swarm of the cluster from its inventory
# (/etc/pibake/swarm.env), once; pibake-swarm.service runs it until it has succeeded.
#   every node: loads the `docker save` archives in /var/lib/pibake/images;
#   the manager: `docker swarm init` on its cluster address, then, once every member is
#     Ready, labels each (role and `labels` var) and deploys /etc/pibake/swarm/stack.yml;
#   the others: fetch the join token (worker or manager, as their profile says) from the
#     manager over the cluster's SSH (the admin's cluster key, the host keys pibake baked)
#     and join, retrying with backoff.
# The join token is held in a variable only: never echoed, logged or written to a file.
set -eu
# The settings are read as data, never sourced. pibake wrote them from parsed values:
# node names, addresses, a stack name and labels of letters, digits and `._-=`, so a
# word never holds a space or a glob character.
env=/etc/pibake/swarm.env
setting() { sed -n "s/^$1=//p" "$env" | head -n 1; }
SWARM_MANAGER=$(setting SWARM_MANAGER)
SWARM_MANAGER_ADDRESS=$(setting SWARM_MANAGER_ADDRESS)
SWARM_ADDRESS=$(setting SWARM_ADDRESS)
SWARM_JOIN_AS=$(setting SWARM_JOIN_AS)
SWARM_ADMIN=$(setting SWARM_ADMIN)
SWARM_STACK=$(setting SWARM_STACK)
SWARM_NODES=$(setting SWARM_NODES)
me=$(hostname)
say() { echo "pibake swarm: $*"; }

# backoff CMD...: runs CMD until it succeeds, waiting 5, 10, 20, 40 then 60 s between tries.
backoff() {
    wait=5
    until "$@"; do
        sleep "$wait"
        wait=$((wait * 2 > 60 ? 60 : wait * 2))
    done
}

backoff docker info >/dev/null 2>&1
for image in /var/lib/pibake/images/*.tar /var/lib/pibake/images/*.tar.gz /var/lib/pibake/images/*.tar.xz; do
    [ -e "$image" ] || continue
    docker load -i "$image"
done

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$me" = "$SWARM_MANAGER" ]; then
    if [ "$state" != active ]; then
        docker swarm init --advertise-addr "$SWARM_ADDRESS" >/dev/null
        say "initialised on $SWARM_ADDRESS"
    fi
    ready() {
        up=$(docker node ls --format '{{.Hostname}} {{.Status}}')
        for name in $SWARM_NODES; do
            echo "$up" | grep -qx "$name Ready" || return 1
        done
    }
    say "waiting for every member: $SWARM_NODES"
    backoff ready
    # SWARM_LABELS=NAME LABEL...: a spare's line is skipped until it has joined.
    sed -n 's/^SWARM_LABELS=//p' "$env" | while read -r name labels; do
        docker node inspect "$name" </dev/null >/dev/null 2>&1 || continue
        for label in $labels; do
            docker node update --label-add "$label" "$name" </dev/null >/dev/null
        done
    done
    say "every member Ready and labelled"
    if [ -f /etc/pibake/swarm/stack.yml ]; then
        docker stack deploy --compose-file /etc/pibake/swarm/stack.yml "$SWARM_STACK"
        say "stack $SWARM_STACK deployed"
    fi
else
    if [ "$state" != active ]; then
        key=/home/$SWARM_ADMIN/.ssh/id_ed25519
        [ -f "$key" ] || { say "no cluster key $key: set admin.node_ssh: true"; exit 1; }
        token() {
            token=$(ssh -n -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=yes \
                -o ConnectTimeout=10 "$SWARM_ADMIN@$SWARM_MANAGER" \
                sudo -n docker swarm join-token -q "$SWARM_JOIN_AS") && [ -n "$token" ]
        }
        say "asking $SWARM_MANAGER for the join token"
        backoff token
        joined() {
            [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ] ||
                docker swarm join --token "$token" "$SWARM_MANAGER_ADDRESS:2377" >/dev/null
        }
        backoff joined
        say "joined the swarm of $SWARM_MANAGER"
    fi
fi
touch /var/lib/pibake/swarm.done
