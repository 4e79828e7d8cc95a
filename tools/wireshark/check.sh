#!/bin/sh
# Checks that the dissector decodes the real captures in tools/tests/fixtures: tshark must find
# every frame that `framewire inspect` finds, with the hub names and the datagram header fields,
# and no Lua error. lo.pcap and any.pcap hold the same session, captured twice (57 frames each);
# offload.pcap holds UDP packets that each carry a run of datagrams sent in one call (12 such
# packets, 66 frames), which the dissector must split; shared.pcap holds frames that share headers
# (version 3). Run from the repository root.
set -eu
lua=tools/wireshark/framewire.lua

# check CAPTURE FRAMES NAME-PATTERN NAMED RUNS
check() {
    capture=$1
    verbose=$(tshark -X lua_script:$lua -r "$capture" -V 2>&1)
    if printf '%s\n' "$verbose" | grep -q "Lua Error"; then
        printf '%s\n' "$verbose" | grep "Lua Error" | head -3
        echo "$capture: the dissector failed" >&2
        exit 1
    fi
    field() {
        tshark -X lua_script:$lua -r "$capture" -Y framewire -T fields -e "$1" 2>/dev/null |
            tr ',' '\n'
    }
    kinds=$(field framewire.kind | grep -c .)
    names=$(field framewire.name | grep -c "$3")
    runs=$(field framewire.run.datagrams | grep -c . || true)
    cids=$(tshark -X lua_script:$lua -r "$capture" -Y 'framewire.connection_id' 2>/dev/null | grep -c .)
    echo "$capture: $kinds frames, $names named, $cids datagrams, $runs runs split"
    [ "$kinds" -eq "$2" ] || { echo "$capture: expected $2 frames" >&2; exit 1; }
    [ "$names" -eq "$4" ] || { echo "$capture: expected $4 named frames" >&2; exit 1; }
    [ "$runs" -eq "$5" ] || { echo "$capture: expected $5 runs" >&2; exit 1; }
    [ "$cids" -gt 0 ] || { echo "$capture: no datagram decoded" >&2; exit 1; }
    acks=$(tshark -X lua_script:$lua -r "$capture" -Y 'framewire.datagram_flags.ack == 1' 2>/dev/null | grep -c .)
    [ "$acks" -gt 0 ] || { echo "$capture: no datagram flag decoded" >&2; exit 1; }
    printf '%s\n' "$verbose" | grep -q 'Kind: Publish (0x32)' || {
        echo "$capture: no Publish in the detail view" >&2
        exit 1
    }
}

check tools/tests/fixtures/lo.pcap 57 'fixtures/\|sys.ping' 15 0
check tools/tests/fixtures/any.pcap 57 'fixtures/\|sys.ping' 15 0
check tools/tests/fixtures/offload.pcap 66 'cap/\|sys.ping' 20 12

# shared.pcap: a version-3 session whose coalesced frames share headers (section 2.4): every frame
# inspect finds (166), some of them shown as sharing the header before them, no Lua error.
shared=tools/tests/fixtures/shared.pcap
if tshark -X lua_script:$lua -r "$shared" -V 2>&1 | grep -q "Lua Error"; then
    echo "$shared: the dissector failed" >&2
    exit 1
fi
kinds=$(tshark -X lua_script:$lua -r "$shared" -Y framewire -T fields -e framewire.kind 2>/dev/null |
    tr ',' '\n' | grep -c .)
sharing=$(tshark -X lua_script:$lua -r "$shared" -Y framewire.shared_header 2>/dev/null | grep -c .)
echo "$shared: $kinds frames, $sharing packets with frames that share a header"
[ "$kinds" -eq 166 ] || { echo "$shared: expected 166 frames" >&2; exit 1; }
[ "$sharing" -gt 0 ] || { echo "$shared: no frame shares a header" >&2; exit 1; }
