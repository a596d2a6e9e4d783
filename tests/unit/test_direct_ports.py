"""Which published ports go direct (network.direct_bindings) and what pasta
is then asked to do (pasta.argv_for)."""

from helpers import network
from helpers.network import pasta


def test_direct_bindings_are_tcp_on_any_or_loopback_once_per_port():
    published = [("", 8080, 80, "tcp"), ("127.0.0.1", 8443, 443, "tcp"),
                 ("0.0.0.0", 9000, 9000, "tcp"),
                 ("", 5353, 53, "udp"),                   # UDP: pasta's
                 ("192.0.2.1", 7000, 7000, "tcp"),        # an address -T cannot reach
                 ("", 8081, 81, "tcp"), ("", 8082, 81, "tcp")]   # 81 twice
    assert network.direct_bindings(published) == [
        ("", 8080, 80, "tcp"), ("127.0.0.1", 8443, 443, "tcp"),
        ("0.0.0.0", 9000, 9000, "tcp")]


def test_pasta_forwards_the_rest_and_maps_the_direct_ones_back():
    published = [("127.0.0.1", 8080, 80, "tcp"), ("192.0.2.1", 7000, 7000, "tcp"),
                 ("", 5353, 53, "udp")]
    direct = network.direct_bindings(published)
    argv = pasta.argv_for(42, {}, published, "/run/x.pid", direct)
    pairs = [(argv[i], argv[i + 1]) for i in range(len(argv) - 1) if argv[i] in
             ("-t", "-u", "-T", "-U")]
    assert pairs == [("-T", "80:8080"), ("-U", "none"), ("-t", "192.0.2.1/7000:7000"),
                     ("-u", "5353:53")]
    # Without direct ports: as before, nothing from the container to the host.
    argv = pasta.argv_for(42, {}, published, "/run/x.pid")
    assert ("-T", "none") in zip(argv, argv[1:])
    assert ("-t", "127.0.0.1/8080:80") in zip(argv, argv[1:])


def test_only_asked_for_on_pasta_with_tcp_ports_goes_direct():
    ports = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    asked = {"direct_ports": True}

    def decide(st):
        return network.decide_direct(None, "c1", st)
    assert decide({"NetworkMode": "pasta", "PortBindings": ports, "HelperSettings": asked})
    # Not by default: the socket would be the host's (see decide_direct).
    assert not decide({"NetworkMode": "pasta", "PortBindings": ports})
    assert not decide({"NetworkMode": "pasta", "PortBindings": ports,
                       "HelperSettings": {"direct_ports": False}})
    assert not decide({"NetworkMode": "slirp4netns", "PortBindings": ports,
                       "HelperSettings": asked})
    assert not decide({"NetworkMode": "pasta", "HelperSettings": asked})
    assert not decide({"NetworkMode": "pasta", "HelperSettings": asked, "PortBindings": {
        "53/udp": [{"HostIp": "", "HostPort": "53"}]}})
    assert not decide({"NetworkMode": "mynet", "OutboundHelper": "pasta",
                       "Networks": {"mynet": {}}, "PortBindings": ports,
                       "HelperSettings": asked})
    assert network.direct_of("c1") == []
