#!/bin/sh
# Checks that the dissector decodes the real captures in tools/tests/fixtures: tshark must find
# every frame that `framewire inspect` finds (57 in each: the same session, captured twice), with
# the hub names and the datagram header fields, and no Lua error. Run from the repository root.
set -eu
lua=tools/wireshark/framewire.lua
for capture in tools/tests/fixtures/lo.pcap tools/tests/fixtures/any.pcap; do
    verbose=$(tshark -X lua_script:$lua -r "$capture" -V 2>&1)
    if printf '%s\n' "$verbose" | grep -q "Lua Error"; then
        printf '%s\n' "$verbose" | grep "Lua Error" | head -3
        echo "$capture: the dissector failed" >&2
        exit 1
    fi
    kinds=$(tshark -X lua_script:$lua -r "$capture" -Y framewire -T fields -e framewire.kind 2>/dev/null |
        tr ',' '\n' | grep -c .)
    names=$(tshark -X lua_script:$lua -r "$capture" -Y framewire -T fields -e framewire.name 2>/dev/null |
        tr ',' '\n' | grep -c 'fixtures/\|sys.ping')
    cids=$(tshark -X lua_script:$lua -r "$capture" -Y 'framewire.connection_id' 2>/dev/null | grep -c .)
    echo "$capture: $kinds frames, $names named, $cids datagrams"
    [ "$kinds" -eq 57 ] || { echo "$capture: expected 57 frames" >&2; exit 1; }
    [ "$names" -eq 15 ] || { echo "$capture: expected 15 named frames" >&2; exit 1; }
    [ "$cids" -gt 0 ] || { echo "$capture: no datagram decoded" >&2; exit 1; }
    acks=$(tshark -X lua_script:$lua -r "$capture" -Y 'framewire.datagram_flags.ack == 1' 2>/dev/null | grep -c .)
    [ "$acks" -gt 0 ] || { echo "$capture: no datagram flag decoded" >&2; exit 1; }
    printf '%s\n' "$verbose" | grep -q 'Kind: Publish (0x32)' || {
        echo "$capture: no Publish in the detail view" >&2
        exit 1
    }
done
