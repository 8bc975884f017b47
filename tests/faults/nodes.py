"""Two "nodes" on one machine for the node-loss tests: each a network namespace of its own,
joined to this machine's namespace by a veth pair, with an address of its own.

    this machine (gateway, Redis, PostgreSQL)        node a               node b
    10.77.N.1 ──────────── veth ────────────────── 10.77.N.2
    10.77.N+1.1 ────────── veth ──────────────────────────────────── 10.77.N+1.2

A node's replicas listen on the node's address and reach Redis and PostgreSQL at this
machine's end of its link. Cutting a node takes its end of the link down, as a dead network
card or a pulled cable would: packets on connections that were open vanish without an answer
(the peer sees a timeout, not a reset), and new connections find no route.

Needs root (CAP_NET_ADMIN) and iproute2's `ip`.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from v5_cluster.config import Node


def _ip(*args: str, netns: str | None = None, check: bool = True) -> None:
    command = ["ip", *(("netns", "exec", netns, "ip") if netns else ()), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class NodeLink:
    node: Node
    host_interface: str  # this machine's end
    node_interface: str  # the node's end, inside its namespace

    def cut(self) -> None:
        """The node's network card goes dead: nothing in or out, and no reset either."""
        _ip("link", "set", self.node_interface, "down", netns=self.node.netns)

    def heal(self) -> None:
        _ip("link", "set", self.node_interface, "up", netns=self.node.netns)


@contextmanager
def network_nodes(count: int = 2) -> Iterator[list[NodeLink]]:
    """`count` nodes, removed again at the end (with every interface and address)."""
    tag = f"{random.randrange(16**4):04x}"
    # A /24 per node in 10.77.0.0/16, chosen at random so that two runs on one machine do
    # not collide.
    first = random.randrange(1, 250 - count)
    links: list[NodeLink] = []
    try:
        for index in range(count):
            name = "abcdefgh"[index]
            netns = f"v5-{tag}-{name}"
            subnet = f"10.77.{first + index}"
            link = NodeLink(
                node=Node(
                    name=name,
                    address=f"{subnet}.2",
                    data_address=f"{subnet}.1",
                    netns=netns,
                ),
                host_interface=f"v5{tag}{name}h",
                node_interface=f"v5{tag}{name}n",
            )
            _ip("netns", "add", netns)
            links.append(link)
            _ip("link", "set", "lo", "up", netns=netns)
            _ip(
                "link",
                "add",
                link.host_interface,
                "type",
                "veth",
                "peer",
                "name",
                link.node_interface,
            )
            _ip("link", "set", link.node_interface, "netns", netns)
            _ip("addr", "add", f"{subnet}.1/24", "dev", link.host_interface)
            _ip("link", "set", link.host_interface, "up")
            _ip("addr", "add", f"{subnet}.2/24", "dev", link.node_interface, netns=netns)
            _ip("link", "set", link.node_interface, "up", netns=netns)
        yield links
    finally:
        for link in links:
            # Deleting one end of a veth pair deletes both; the namespace goes with its name.
            _ip("link", "del", link.host_interface, check=False)
            _ip("netns", "del", str(link.node.netns), check=False)
