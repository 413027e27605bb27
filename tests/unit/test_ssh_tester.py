"""The SSH tester (fixtures/testers/ssh.py) against an asyncssh server in this process, on loopback.

Its requests and its message log use asyncssh internals (``_make_global_request``, ``_send_global_request``,
a channel's ``_make_request`` and ``_send_request``, the per-object packet log hooks); these tests exercise
each, so an asyncssh upgrade that moves one fails here, loudly, before any case misreads an IUT.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

# asyncssh as the tester imports it: with cryptography's DSA warnings filtered
from fixtures.testers.ssh import (
    CHANNEL_REQUEST,
    GLOBAL_REQUEST,
    REQUEST_FAILURE,
    REQUEST_SUCCESS,
    SshTester,
    asyncssh,
    tcpip_forward,
)
from fixtures.waiting import wait_until


class Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def session_requested(self):
        return Session()


class Session(asyncssh.SSHServerSession):
    def shell_requested(self) -> bool:  # the tester's session asks for a shell, as an interactive client does
        return True


@pytest.fixture(scope="module")
def server():
    """An asyncssh server on 127.0.0.1 that trusts one user key; (port, user key PEM)."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[host_key], server_factory=Server,
                                     authorized_client_keys=asyncssh.import_authorized_keys(
                                         user_key.export_public_key().decode()))

    listener = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield listener.get_port(), user_key.export_private_key()
    loop.call_soon_threadsafe(listener.close)
    loop.call_soon_threadsafe(loop.stop)


def connected(server) -> SshTester:
    port, key = server
    tester = SshTester(socket.create_connection(("127.0.0.1", port)), timeout=10)
    assert tester.connect("aliveness", key) is None
    return tester


def test_an_unknown_global_request_gets_failure_and_is_logged_with_its_name(server):
    tester = connected(server)
    try:
        reply = tester.global_request("nonexistent@aliveness.test")
        assert reply.outcome == "failure" and reply.ms is not None and reply.ms >= 0
        sent = [m for m in tester.messages if m.direction == "out" and m.kind == GLOBAL_REQUEST]
        assert [(m.name, m.want_reply) for m in sent] == [("nonexistent@aliveness.test", True)]
        assert tester.received(kinds=(REQUEST_FAILURE,))
        quiet = tester.global_request("quiet@aliveness.test", want_reply=False)
        assert quiet.outcome == "none"
        wait_until(lambda: "GLOBAL_REQUEST 'quiet@aliveness.test' want-reply=0" in tester.log(), 3)
    finally:
        tester.close()


def test_a_channel_request_on_a_session_is_answered_and_logged(server):
    tester = connected(server)
    try:
        chan = tester.open_session()
        reply = tester.channel_request(chan, "nonexistent@aliveness.test")
        assert reply.outcome == "failure"
        sent = [m for m in tester.messages if m.direction == "out" and m.kind == CHANNEL_REQUEST]
        assert [(m.name, m.want_reply) for m in sent] == [("nonexistent@aliveness.test", True)]
    finally:
        tester.close()


def test_requests_sent_back_to_back_are_all_answered(server):
    tester = connected(server)
    try:
        outcomes = tester.global_requests([("one@aliveness.test", b""), ("tcpip-forward", tcpip_forward()),
                                           ("two@aliveness.test", b"")])
        assert outcomes[0] == outcomes[2] == "failure" and outcomes[1] in ("success", "failure")
        assert len(tester.received(kinds=(REQUEST_FAILURE, REQUEST_SUCCESS))) == 3
    finally:
        tester.close()


def test_the_tester_as_server_takes_a_client_s_login_and_sends_it_requests():
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    a, b = socket.socketpair()
    tester = SshTester(a, timeout=10)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def client():
        return await asyncssh.connect("tester", 22, sock=b, username="aliveness", client_keys=[user_key],
                                      known_hosts=None, agent_path=None, config=None)

    future = asyncio.run_coroutine_threadsafe(client(), loop)
    try:
        assert tester.accept(host_key.export_private_key(), user_key.export_public_key()) is None
        future.result(10)
        reply = tester.global_request("nonexistent@aliveness.test")
        assert reply.outcome == "failure"
    finally:
        tester.close()
        loop.call_soon_threadsafe(loop.stop)


def test_the_tester_as_server_offers_curve25519_first_and_the_rest_of_asyncssh_s_defaults():
    from fixtures.testers.ssh import SERVER_KEX_FIRST, server_kex_algs

    algs = server_kex_algs()
    assert algs[:2] == SERVER_KEX_FIRST and len(algs) == len(set(algs)) > 2


def test_ignore_packets_keep_a_client_s_keepalive_quiet_and_unanswered_keepalives_end_it():
    """send_ignore() is traffic the client counts as life; after stop_answering() its keepalives go unanswered
    and its keepalive gives the tester up (both wrap asyncssh internals: this breaks if they move)."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    a, b = socket.socketpair()
    tester = SshTester(a, timeout=10)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def client():
        return await asyncssh.connect("tester", 22, sock=b, username="aliveness", client_keys=[user_key],
                                      known_hosts=None, agent_path=None, config=None,
                                      keepalive_interval=0.5, keepalive_count_max=1)

    future = asyncio.run_coroutine_threadsafe(client(), loop)
    try:
        assert tester.accept(host_key.export_private_key(), user_key.export_public_key()) is None
        future.result(10)
        tester.stop_answering()
        began = time.time()
        due = began
        while time.time() - began < 1.5:  # IGNORE every 0.2 s: the client's 0.5 s keepalive never comes due
            tester.send_ignore()
            due += 0.2
            wait_until(lambda until=due: time.time() >= until, 1)
        assert tester.alive and not tester.received(began, (GLOBAL_REQUEST,))
        quiet = time.time()
        wait_until(lambda: tester.closed is not None, 5, what="the client to give the tester up")
        asked = tester.received(quiet, (GLOBAL_REQUEST,))
        assert asked and not [m for m in tester.messages if m.direction == "out" and m.t > quiet
                              and m.kind in (REQUEST_SUCCESS, REQUEST_FAILURE)]
    finally:
        tester.close()
        loop.call_soon_threadsafe(loop.stop)
