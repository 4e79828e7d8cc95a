-- Wireshark / tshark dissector for framewire (docs/PROTOCOL.md): TCP stream frames (section 2.1)
-- and UDP datagrams (section 2.2, version 2's compact ones, section 2.4, and sealed ones of either form, sections 2.3 and 2.5) on port 7400, each frame's header (section 3.1) and, for the
-- hub kinds that carry one, the topic, filter, target, service or queue name. A UDP packet that
-- holds a run of datagrams sent in one call (segmentation offload, as tcpdump records it on the
-- sending host) is split into its datagrams, each shown on its own.
--
--   tshark -X lua_script:tools/wireshark/framewire.lua -r capture.pcap -V
--   wireshark -X lua_script:tools/wireshark/framewire.lua capture.pcapng
--
-- Or copy it into Wireshark's personal plugins folder. The port is a preference (framewire.port).

local fw = Proto("framewire", "framewire")

local KINDS = {
  [0x01] = "Hello", [0x02] = "Challenge", [0x03] = "Welcome", [0x04] = "Reject",
  [0x05] = "Discover", [0x06] = "Here", [0x08] = "Close", [0x09] = "CloseAck", [0x10] = "Ping", [0x11] = "Pong", [0x12] = "Ack",
  [0x13] = "Fragment", [0x14] = "Reset", [0x20] = "Data", [0x21] = "Error", [0x30] = "Subscribe",
  [0x31] = "Unsubscribe", [0x32] = "Publish", [0x33] = "Message", [0x40] = "Request",
  [0x41] = "Response", [0x42] = "Register", [0x43] = "Unregister", [0x50] = "QueuePush",
  [0x51] = "QueueFetch", [0x52] = "QueueDelivery", [0x53] = "QueueAck", [0x54] = "QueueNack",
  [0x55] = "QueueExtend",
}

-- Where a kind's name field starts after the frame header (the id and other fixed fields).
local NAME_AT = {
  [0x30] = 4, [0x31] = 4, [0x32] = 4, [0x33] = 0, [0x40] = 8, [0x42] = 4, [0x43] = 4,
  [0x50] = 4, [0x51] = 10, [0x52] = 12, [0x53] = 12, [0x54] = 16, [0x55] = 16,
}

local f = fw.fields
f.length = ProtoField.uint32("framewire.length", "Length", base.DEC)
f.version = ProtoField.uint8("framewire.version", "Version", base.DEC)
f.crc = ProtoField.uint32("framewire.crc", "CRC-32", base.HEX)
f.magic = ProtoField.bytes("framewire.magic", "Magic")
f.dflags = ProtoField.uint8("framewire.datagram_flags", "Datagram flags", base.HEX)
f.dflag_ack = ProtoField.bool("framewire.datagram_flags.ack", "Ack block", 8, nil, 0x01)
f.dflag_ack_now = ProtoField.bool("framewire.datagram_flags.ack_now", "Ack now", 8, nil, 0x02)
f.dflag_sealed = ProtoField.bool("framewire.datagram_flags.sealed", "Sealed", 8, nil, 0x04)
f.sealed = ProtoField.bytes("framewire.sealed", "Sealed (ChaCha20-Poly1305: ack block and frames)")
f.tag = ProtoField.bytes("framewire.tag", "Tag (Poly1305)")
f.connection_id = ProtoField.uint64("framewire.connection_id", "Connection id", base.HEX)
f.packet_number = ProtoField.uint32("framewire.packet_number", "Packet number", base.DEC)
f.largest_acked = ProtoField.uint32("framewire.largest_acked", "Largest acked", base.DEC)
f.ack_delay = ProtoField.uint16("framewire.ack_delay", "Ack delay (µs)", base.DEC)
f.ack_bits = ProtoField.uint64("framewire.ack_bits", "Ack bits", base.HEX)
f.frame_length = ProtoField.uint16("framewire.frame_length", "Frame length", base.DEC)
f.kind = ProtoField.uint8("framewire.kind", "Kind", base.HEX, KINDS)
f.flags = ProtoField.uint8("framewire.flags", "Flags", base.HEX)
f.channel = ProtoField.uint8("framewire.channel", "Channel", base.DEC)
f.seq = ProtoField.uint32("framewire.seq", "Sequence", base.DEC)
f.name = ProtoField.string("framewire.name", "Name")
f.number = ProtoField.uint32("framewire.message.number", "Delivery number", base.DEC)
f.nonce = ProtoField.uint64("framewire.nonce", "Nonce", base.HEX)
f.card = ProtoField.string("framewire.card", "Node card")
f.compact_flags = ProtoField.uint8("framewire.compact_flags", "Compact datagram flags", base.HEX)
f.cflag_ack = ProtoField.bool("framewire.compact_flags.ack", "Ack block", 8, nil, 0x20)
f.cflag_ack_now = ProtoField.bool("framewire.compact_flags.ack_now", "Ack now", 8, nil, 0x10)
f.cflag_one = ProtoField.bool("framewire.compact_flags.one_frame", "One frame", 8, nil, 0x08)
f.shared_header = ProtoField.bool("framewire.shared_header", "Shares the header of the frame before it")
f.connection_id32 = ProtoField.uint32("framewire.connection_id32", "Connection id", base.HEX)
f.packet_number_low = ProtoField.uint32("framewire.packet_number_low",
  "Packet number (low bits)", base.DEC)
f.largest_acked_low = ProtoField.uint16("framewire.largest_acked_low",
  "Largest acked (low 16 bits)", base.DEC)
f.ack_delay_units = ProtoField.uint8("framewire.ack_delay_units", "Ack delay (256 µs units)",
  base.DEC)
f.ack_bits_varint = ProtoField.string("framewire.ack_bits_varint", "Ack bits")
f.frame_length_varint = ProtoField.uint32("framewire.frame_length_varint", "Frame length", base.DEC)
f.seq_low = ProtoField.uint16("framewire.seq_low", "Sequence (low 16 bits)", base.DEC)
f.run_datagrams = ProtoField.uint32("framewire.run.datagrams", "Datagrams in the packet", base.DEC)
f.segment_len = ProtoField.uint32("framewire.run.segment_len", "Segment length", base.DEC)

fw.prefs.port = Pref.uint("Port", 7400, "The server's TCP and UDP port")

-- One frame body (section 3.1) in `tvb`, under `tree`; returns the kind's name. `short_seq`: a
-- compact datagram's, whose SEQ field is 16 bits (section 2.4).
local function frame_body(tvb, tree, short_seq)
  local sub = tree:add(fw, tvb, "Frame")
  if tvb:len() < 3 then
    sub:add_expert_info(PI_MALFORMED, PI_ERROR, "frame body shorter than its header")
    return "?"
  end
  local kind = tvb(0, 1):uint()
  local flags = tvb(1, 1):uint()
  local name = KINDS[kind] or string.format("0x%02x", kind)
  sub:set_text("Frame: " .. name)
  sub:add(f.kind, tvb(0, 1))
  sub:add(f.flags, tvb(1, 1))
  sub:add(f.channel, tvb(2, 1))
  local at = 3
  if bit.band(flags, 0x80) ~= 0 and short_seq and tvb:len() >= 5 then
    sub:add(f.seq_low, tvb(3, 2))
    at = 5
  elseif bit.band(flags, 0x80) ~= 0 and tvb:len() >= 7 then
    sub:add(f.seq, tvb(3, 4))
    at = 7
  end
  -- Discover and Here (section 4.12): a nonce, then padding or the node's card (text lines).
  if (kind == 0x05 or kind == 0x06) and tvb:len() >= at + 8 then
    sub:add(f.nonce, tvb(at, 8))
    if kind == 0x06 and tvb:len() > at + 8 then
      local card = tvb(at + 8, tvb:len() - at - 8)
      sub:add(f.card, card)
      local first = card:string():match("^name=([^\n]*)")
      if first then sub:append_text(" \"" .. first .. "\"") end
    end
  end
  local name_at = NAME_AT[kind]
  -- A Message with flag NUMBERED (0x02) has its delivery number before the topic (section 5.3).
  if kind == 0x33 and bit.band(flags, 0x02) ~= 0 and tvb:len() >= at + 4 then
    sub:add(f.number, tvb(at, 4))
    name_at = 4
  end
  if name_at and tvb:len() >= at + name_at + 2 then
    local start = at + name_at
    local len = tvb(start, 2):uint()
    if tvb:len() >= start + 2 + len then
      local text = tvb(start + 2, len):string()
      sub:add(f.name, tvb(start + 2, len))
      sub:append_text(" \"" .. text .. "\"")
    end
  end
  return name
end

local function add_info(pinfo, name)
  local info = tostring(pinfo.cols.info)
  if string.sub(info, 1, 10) ~= "framewire:" then
    pinfo.cols.info:set("framewire: " .. name)
  else
    pinfo.cols.info:append(", " .. name)
  end
end

-- TCP: how long the stream frame at `offset` is (prefix included).
local function stream_frame_len(tvb, pinfo, offset)
  return tvb(offset, 4):uint() + 4
end

local function stream_frame(tvb, pinfo, tree)
  pinfo.cols.protocol = "framewire"
  local sub = tree:add(fw, tvb(), "framewire stream frame")
  local len = tvb(0, 4):uint()
  sub:add(f.length, tvb(0, 4))
  sub:add(f.version, tvb(4, 1))
  local name = frame_body(tvb(5, len - 5):tvb(), sub)
  sub:add(f.crc, tvb(len, 4))
  add_info(pinfo, name)
  return len + 4
end

local function dissect_tcp(tvb, pinfo, tree)
  dissect_tcp_pdus(tvb, tree, 4, stream_frame_len, stream_frame)
  return tvb:len()
end

-- CRC-32 (IEEE, as zlib), for telling one datagram from a run of them. LuaBitOp's results are
-- signed: `u32` makes them comparable with a field's value.
local CRC_TABLE = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if bit.band(c, 1) ~= 0 then
      c = bit.bxor(bit.rshift(c, 1), 0xEDB88320)
    else
      c = bit.rshift(c, 1)
    end
  end
  CRC_TABLE[i] = c
end

local function u32(x)
  if x < 0 then
    return x + 4294967296
  end
  return x
end

-- The CRC state `crc` (start with 0xFFFFFFFF) advanced over bytes [from, to) of ByteArray `b`.
local function crc_update(crc, b, from, to)
  for i = from, to - 1 do
    crc = bit.bxor(CRC_TABLE[bit.band(bit.bxor(crc, b:get_index(i)), 0xFF)], bit.rshift(crc, 8))
  end
  return crc
end

local function crc_final(crc)
  return u32(bit.bxor(crc, 0xFFFFFFFF))
end

local function be32(b, at)
  return ((b:get_index(at) * 256 + b:get_index(at + 1)) * 256 + b:get_index(at + 2)) * 256
    + b:get_index(at + 3)
end

local function header_len(b, from)
  if bit.band(b:get_index(from + 3), 1) ~= 0 then
    return 30
  end
  return 16
end

-- Whether bytes [from, to) of `b` are one whole datagram: magic, version, CRC, and frame lengths
-- that tile the rest (section 2.2).
local function verifies(b, from, to)
  if to - from < 20 or b:get_index(from) ~= 0x46 or b:get_index(from + 1) ~= 0x57
      or b:get_index(from + 2) ~= 1 then
    return false
  end
  local at = from + header_len(b, from)
  local last = to - 4
  if at > last or crc_final(crc_update(0xFFFFFFFF, b, from, last)) ~= be32(b, last) then
    return false
  end
  while at < last do
    if at + 2 > last then
      return false
    end
    local len = b:get_index(at) * 256 + b:get_index(at + 1)
    if len == 0 or at + 2 + len > last then
      return false
    end
    at = at + 2 + len
  end
  return true
end

-- A packet that holds a run of datagrams sent in one call (segmentation offload, as a capture on
-- the sending host records it): the first datagram's length, found where the four bytes after a
-- frame are the CRC of everything before them, if every piece of that length (the last may be
-- shorter) is a whole datagram; nil otherwise. Only the first CRC match is tried.
local function run_segment_len(b)
  local total = b:len()
  if total < 40 or b:get_index(0) ~= 0x46 or b:get_index(1) ~= 0x57 then
    return nil
  end
  local at = header_len(b, 0)
  local crc = crc_update(0xFFFFFFFF, b, 0, at)
  while at + 4 < total do
    if crc_final(crc) == be32(b, at) then
      local segment = at + 4
      local from = 0
      while from < total do
        local to = math.min(from + segment, total)
        if not verifies(b, from, to) then
          return nil
        end
        from = to
      end
      return segment
    end
    local len = b:get_index(at) * 256 + b:get_index(at + 1)
    if len == 0 or at + 2 + len + 4 > total then
      return nil
    end
    crc = crc_update(crc, b, at, at + 2 + len)
    at = at + 2 + len
  end
  return nil
end

-- One datagram in `tvb` under `tree`: its header fields and frames; appends the frames' kind names
-- to `names`.
local function datagram(tvb, tree, label, names)
  local sub = tree:add(fw, tvb(), label)
  sub:add(f.magic, tvb(0, 2))
  sub:add(f.version, tvb(2, 1))
  local dflags = sub:add(f.dflags, tvb(3, 1))
  dflags:add(f.dflag_ack, tvb(3, 1))
  dflags:add(f.dflag_ack_now, tvb(3, 1))
  dflags:add(f.dflag_sealed, tvb(3, 1))
  sub:add(f.connection_id, tvb(4, 8))
  sub:add(f.packet_number, tvb(12, 4))
  if bit.band(tvb(3, 1):uint(), 4) ~= 0 then
    -- Sealed (docs/PROTOCOL.md section 2.3): only the session's keys open the rest.
    if tvb:len() >= 33 then
      sub:add(f.sealed, tvb(16, tvb:len() - 32))
      sub:add(f.tag, tvb(tvb:len() - 16, 16))
    else
      sub:add_expert_info(PI_MALFORMED, PI_ERROR, "too short for a sealed datagram")
    end
    table.insert(names, "sealed")
    return
  end
  local at = 16
  if bit.band(tvb(3, 1):uint(), 1) ~= 0 and tvb:len() >= 34 then
    sub:add(f.largest_acked, tvb(16, 4))
    sub:add(f.ack_delay, tvb(20, 2))
    sub:add(f.ack_bits, tvb(22, 8))
    at = 30
  end
  local count = #names
  local last = tvb:len() - 4
  while at + 2 <= last do
    local len = tvb(at, 2):uint()
    sub:add(f.frame_length, tvb(at, 2))
    if len == 0 or at + 2 + len > last then
      sub:add_expert_info(PI_MALFORMED, PI_ERROR, "frame lengths do not tile the datagram")
      break
    end
    table.insert(names, frame_body(tvb(at + 2, len):tvb(), sub))
    at = at + 2 + len
  end
  sub:add(f.crc, tvb(last, 4))
  if #names == count then
    table.insert(names, "ack")
  end
end

-- The length of the first sealed datagram of a packet holding a run of them: where the next
-- sealed header of the same session and the next packet number starts; nil for a lone one.
local function sealed_run_len(tvb)
  local len = tvb:len()
  if len < 66 or bit.band(tvb(3, 1):uint(), 4) == 0 then
    return nil
  end
  local cid = tostring(tvb(4, 8):bytes())
  local next_pn = (tvb(12, 4):uint() + 1) % 4294967296
  for at = 33, len - 33 do
    if tvb(at, 2):uint() == 0x4657 and tvb(at + 2, 1):uint() == 1
        and bit.band(tvb(at + 3, 1):uint(), 4) ~= 0 and tostring(tvb(at + 4, 8):bytes()) == cid
        and tvb(at + 12, 4):uint() == next_pn then
      return at
    end
  end
  return nil
end

-- Version 2's compact datagrams (section 2.4). Their packet numbers travel as low bits and their
-- CRC covers the number whole, so the dissector restores each from the largest seen before in
-- the same direction (the first pass, in capture order; later passes reuse what it found). A
-- capture that joins a session late shows its first compact datagrams unverified.

local function crc_byte(crc, v)
  return bit.bxor(CRC_TABLE[bit.band(bit.bxor(crc, v), 0xFF)], bit.rshift(crc, 8))
end

local function crc_number(crc, n)
  crc = crc_byte(crc, math.floor(n / 16777216) % 256)
  crc = crc_byte(crc, math.floor(n / 65536) % 256)
  crc = crc_byte(crc, math.floor(n / 256) % 256)
  return crc_byte(crc, n % 256)
end

-- The number whose low `bits` bits are `low` nearest `expected` (ties to the larger), mod 2^32.
local function restore(low, bits, expected)
  local window = 2 ^ bits
  local diff = (low - expected) % window
  local n = expected + diff
  if diff > window / 2 then
    n = n - window
  end
  return n % 4294967296
end

-- A LEB128 number at `at` of ByteArray `b`, before `limit`: its value and length, or nil.
local function varint(b, at, limit, max_len)
  local v = 0
  local scale = 1
  for i = 0, max_len - 1 do
    if at + i >= limit then
      return nil
    end
    local byte = b:get_index(at + i)
    v = v + bit.band(byte, 0x7F) * scale
    scale = scale * 128
    if bit.band(byte, 0x80) == 0 then
      if i > 0 and byte == 0 then
        return nil
      end
      return v, i + 1
    end
  end
  return nil
end

local PN_LEN = { [0] = 1, [1] = 2, [2] = 4 }

-- The structure of a compact datagram in bytes [from, to) of `b` (not its CRC): a table of its
-- packet number's low bits and length, where its ack block and frames are; nil if it breaks one.
local function compact_structure(b, from, to)
  if to - from < 10 then
    return nil
  end
  local first = b:get_index(from)
  local pn_len = PN_LEN[bit.band(first, 3)]
  if bit.band(first, 0xC0) ~= 0xC0 or bit.band(first, 0x04) ~= 0 or not pn_len then
    return nil
  end
  local last = to - 4
  local at = from + 5
  if at + pn_len > last then
    return nil
  end
  local low = 0
  for i = 0, pn_len - 1 do
    low = low * 256 + b:get_index(at + i)
  end
  at = at + pn_len
  local s = { pn_len = pn_len, low = low, ack_at = nil, frames_at = nil, one = false }
  if bit.band(first, 0x20) ~= 0 then
    if at + 3 > last then
      return nil
    end
    s.ack_at = at
    local _, n = varint(b, at + 3, last, 10)
    if not n then
      return nil
    end
    s.ack_bits_len = n
    at = at + 3 + n
  end
  s.frames_at = at
  s.one = bit.band(first, 0x08) ~= 0
  if s.one then
    return at < last and s or nil
  end
  if at == last and not s.ack_at then
    return nil
  end
  while at < last do
    local len, n = varint(b, at, last, 3)
    if not len or len == 0 or at + n + len > last then
      return nil
    end
    at = at + n + len
  end
  return s
end

-- The CRC bytes [from, to) of `b` should carry with packet number `pn` (4 bytes in the CRC).
local function compact_crc(b, from, to, pn_len, pn)
  local crc = crc_update(0xFFFFFFFF, b, from, from + 5)
  crc = crc_number(crc, pn)
  crc = crc_update(crc, b, from + 5 + pn_len, to - 4)
  return crc_final(crc)
end

local FLOWS = {}
local SEEN = {}

local function flow_key(pinfo)
  return tostring(pinfo.src) .. ":" .. tostring(pinfo.src_port) .. ">" .. tostring(pinfo.dst)
    .. ":" .. tostring(pinfo.dst_port)
end

-- The packet number of the compact datagram in [from, to), restored and verified against the
-- flow (its largest so far, or nil); nil if it does not verify.
local function compact_verified(b, from, to, largest)
  local s = compact_structure(b, from, to)
  if not s then
    return nil
  end
  local expected = largest and (largest + 1) % 4294967296 or 0
  local pn = restore(s.low, 8 * s.pn_len, expected)
  if compact_crc(b, from, to, s.pn_len, pn) == be32(b, to - 4) then
    return pn
  end
  -- A Reset is outside the packet numbers: number 0 as it is.
  if s.low == 0 and compact_crc(b, from, to, s.pn_len, 0) == be32(b, to - 4) then
    return 0
  end
  return nil
end

-- How the packet splits: a list of { from, to, pn } (pn nil: unverified), and the segment length
-- of a run (nil for one datagram).
local function compact_pieces(b, largest)
  local total = b:len()
  local pn = compact_verified(b, 0, total, largest)
  if pn then
    return { { 0, total, pn } }, nil
  end
  local first = b:get_index(0)
  local pn_len = PN_LEN[bit.band(first, 3)]
  if pn_len and total >= 5 + pn_len + 4 then
    local low = 0
    for i = 0, pn_len - 1 do
      low = low * 256 + b:get_index(5 + i)
    end
    local expected = largest and (largest + 1) % 4294967296 or 0
    local full = restore(low, 8 * pn_len, expected)
    local crc = crc_number(crc_update(0xFFFFFFFF, b, 0, 5), full)
    local at = 5 + pn_len
    while at + 4 < total do
      if crc_final(crc) == be32(b, at) and compact_structure(b, 0, at + 4) then
        local segment = at + 4
        local pieces = {}
        local from = 0
        local seen = largest
        while from < total do
          local to = math.min(from + segment, total)
          local p = compact_verified(b, from, to, seen)
          if not p then
            pieces = nil
            break
          end
          table.insert(pieces, { from, to, p })
          seen = p
          from = to
        end
        if pieces then
          return pieces, segment
        end
        break
      end
      crc = crc_byte(crc, b:get_index(at))
      at = at + 1
    end
  end
  -- Nothing verifies: shown as it is.
  return { { 0, total, nil } }, nil
end

-- One compact datagram in `tvb` under `tree`, its packet number `pn` (nil: unverified).
local function compact_datagram(tvb, tree, label, names, pn)
  local sub = tree:add(fw, tvb(), label)
  local b = tvb:bytes()
  local cflags = sub:add(f.compact_flags, tvb(0, 1))
  cflags:add(f.cflag_ack, tvb(0, 1))
  cflags:add(f.cflag_ack_now, tvb(0, 1))
  cflags:add(f.cflag_one, tvb(0, 1))
  local s = compact_structure(b, 0, b:len())
  if not s then
    sub:add_expert_info(PI_MALFORMED, PI_ERROR, "not a whole compact datagram")
    table.insert(names, "?")
    return
  end
  sub:add(f.connection_id32, tvb(1, 4))
  sub:add(f.packet_number_low, tvb(5, s.pn_len))
  if pn then
    sub:add(f.packet_number, tvb(5, s.pn_len), pn):set_text("Packet number: " .. pn .. " (restored)")
  else
    sub:add_expert_info(PI_PROTOCOL, PI_WARN, "packet number not restored: CRC not verified")
  end
  if s.ack_at then
    sub:add(f.largest_acked_low, tvb(s.ack_at, 2))
    sub:add(f.ack_delay_units, tvb(s.ack_at + 2, 1))
    local bits = varint(b, s.ack_at + 3, b:len() - 4, 10)
    sub:add(f.ack_bits_varint, tvb(s.ack_at + 3, s.ack_bits_len), string.format("%x", bits))
  end
  local count = #names
  local last = tvb:len() - 4
  local at = s.frames_at
  if s.one then
    table.insert(names, frame_body(tvb(at, last - at):tvb(), sub, true))
  else
    -- The last frame's header as the wire has it (kind, flags, channel, 16-bit SEQ), for a frame
    -- that shares it (first byte 0x00, version 3): that header, its SEQ one more, then the rest.
    local head = nil
    while at < last do
      local len, n = varint(b, at, last, 3)
      sub:add(f.frame_length_varint, tvb(at, n), len)
      local body = tvb(at + n, len)
      if body(0, 1):uint() == 0 and head then
        if head:len() == 5 then
          local seq = (head:get_index(3) * 256 + head:get_index(4) + 1) % 65536
          head:set_index(3, math.floor(seq / 256))
          head:set_index(4, seq % 256)
        end
        local whole = ByteArray.new()
        whole:append(head)
        if len > 1 then
          whole:append(body(1, len - 1):bytes())
        end
        sub:add(f.shared_header, body(0, 1), true)
        table.insert(names, frame_body(whole:tvb("Frame sharing the header before it"), sub, true))
      else
        local flags = len >= 2 and body(1, 1):uint() or 0
        local head_len = bit.band(flags, 0x80) ~= 0 and 5 or 3
        head = len >= head_len and body(0, head_len):bytes() or nil
        table.insert(names, frame_body(body:tvb(), sub, true))
      end
      at = at + n + len
    end
  end
  sub:add(f.crc, tvb(last, 4))
  if #names == count then
    table.insert(names, "ack")
  end
end

-- Version 4's sealed compact datagrams (section 2.5): the compact header in the clear (bit 2 of
-- the first byte set), then sealed bytes and the tag; without the keys nothing else is read.
-- The packet number's field is 1, 2 or 4 bytes; nil for a reserved length code.
local function sealed_compact_pn_len(first)
  local code = bit.band(first, 3)
  if code == 3 then
    return nil
  end
  return ({ 1, 2, 4 })[code + 1]
end

local function sealed_compact_datagram(tvb, tree, label, names)
  local sub = tree:add(fw, tvb(), label)
  local cflags = sub:add(f.compact_flags, tvb(0, 1))
  cflags:add(f.cflag_ack, tvb(0, 1))
  cflags:add(f.cflag_ack_now, tvb(0, 1))
  cflags:add(f.cflag_one, tvb(0, 1))
  cflags:add(f.dflag_sealed, tvb(0, 1))
  table.insert(names, "sealed")
  local pn_len = sealed_compact_pn_len(tvb(0, 1):uint())
  if not pn_len or tvb:len() < 5 + pn_len + 1 + 16 then
    sub:add_expert_info(PI_MALFORMED, PI_ERROR, "too short for a sealed compact datagram")
    return
  end
  sub:add(f.connection_id32, tvb(1, 4))
  sub:add(f.packet_number_low, tvb(5, pn_len))
  local at = 5 + pn_len
  sub:add(f.sealed, tvb(at, tvb:len() - at - 16))
  sub:add(f.tag, tvb(tvb:len() - 16, 16))
end

-- The length of the first sealed compact datagram of a packet holding a run of them: where the
-- next sealed compact header of the same session and the next packet number (within its field)
-- starts; nil for a lone one.
local function sealed_compact_run_len(tvb)
  local len = tvb:len()
  local pn_len = sealed_compact_pn_len(tvb(0, 1):uint())
  if not pn_len or len < 2 * (5 + pn_len + 17) then
    return nil
  end
  local cid = tostring(tvb(1, 4):bytes())
  local window = 2 ^ (8 * pn_len)
  local next_pn = (tvb(5, pn_len):uint() + 1) % window
  for at = 5 + pn_len + 17, len - (5 + pn_len + 17) do
    local first = tvb(at, 1):uint()
    if bit.band(first, 0xC4) == 0xC4 and sealed_compact_pn_len(first) == pn_len
        and tostring(tvb(at + 1, 4):bytes()) == cid and tvb(at + 5, pn_len):uint() == next_pn then
      return at
    end
  end
  return nil
end

-- A packet of one datagram (`segment` nil) or of a run of them sent in one call, each `segment`
-- bytes but the last (a subtree for the run): `show(piece, subtree, label, names)` for each
-- datagram, labelled "framewire <what>" or "framewire <what> i of n", and the frames' names in
-- the info column.
local function show_packet(tvb, pinfo, tree, segment, what, show)
  local names = {}
  if not segment then
    show(tvb, tree, "framewire " .. what, names)
    pinfo.cols.info:set("framewire: " .. table.concat(names, ", "))
    return tvb:len()
  end
  local count = math.ceil(tvb:len() / segment)
  local run = tree:add(fw, tvb(), string.format(
    "framewire run: %d %ss of %d B in one packet (sent in one call: segmentation offload)",
    count, what, segment))
  run:add(f.run_datagrams, tvb(), count)
  run:add(f.segment_len, tvb(), segment)
  local from = 0
  local i = 1
  while from < tvb:len() do
    local len = math.min(segment, tvb:len() - from)
    show(tvb(from, len):tvb(), run, string.format("framewire %s %d of %d", what, i, count), names)
    from = from + len
    i = i + 1
  end
  pinfo.cols.info:set("framewire: " .. table.concat(names, ", "))
  return tvb:len()
end

local function dissect_sealed_compact(tvb, pinfo, tree)
  return show_packet(tvb, pinfo, tree, sealed_compact_run_len(tvb), "sealed compact datagram",
    sealed_compact_datagram)
end

local function dissect_compact(tvb, pinfo, tree)
  pinfo.cols.protocol = "framewire"
  if bit.band(tvb(0, 1):uint(), 4) ~= 0 then
    return dissect_sealed_compact(tvb, pinfo, tree)
  end
  local pieces, segment
  if pinfo.visited and SEEN[pinfo.number] then
    pieces, segment = SEEN[pinfo.number][1], SEEN[pinfo.number][2]
  else
    local key = flow_key(pinfo)
    pieces, segment = compact_pieces(tvb:bytes(), FLOWS[key])
    for _, p in ipairs(pieces) do
      if p[3] and (not FLOWS[key] or ((p[3] - FLOWS[key]) % 4294967296) < 2147483648) then
        FLOWS[key] = p[3]
      end
    end
    SEEN[pinfo.number] = { pieces, segment }
  end
  local names = {}
  local parent = tree
  if segment then
    parent = tree:add(fw, tvb(), string.format(
      "framewire run: %d compact datagrams of %d B in one packet (segmentation offload)",
      #pieces, segment))
    parent:add(f.run_datagrams, tvb(), #pieces)
    parent:add(f.segment_len, tvb(), segment)
  end
  for i, p in ipairs(pieces) do
    local label = segment and string.format("framewire compact datagram %d of %d", i, #pieces)
      or "framewire compact datagram"
    compact_datagram(tvb(p[1], p[2] - p[1]):tvb(), parent, label, names, p[3])
  end
  pinfo.cols.info:set("framewire: " .. table.concat(names, ", "))
  return tvb:len()
end

local function dissect_udp(tvb, pinfo, tree)
  if tvb:len() < 20 or tvb(0, 2):uint() ~= 0x4657 then
    return 0
  end
  pinfo.cols.protocol = "framewire"
  local b = tvb:bytes()
  local segment
  if bit.band(tvb(3, 1):uint(), 4) ~= 0 then
    segment = sealed_run_len(tvb)
  else
    segment = not verifies(b, 0, b:len()) and run_segment_len(b)
  end
  return show_packet(tvb, pinfo, tree, segment or nil, "datagram", datagram)
end

local registered
local function register()
  local tcp = DissectorTable.get("tcp.port")
  local udp = DissectorTable.get("udp.port")
  if registered then
    tcp:remove(registered, fw)
    udp:remove(registered, fw)
  end
  registered = fw.prefs.port
  tcp:add(registered, fw)
  udp:add(registered, fw)
end

-- A datagram starts with the magic "FW", a compact one with two high bits set; a stream frame
-- with its length, which no frame makes that large (the ceiling is far below 0x46570000).
function fw.dissector(tvb, pinfo, tree)
  if tvb:len() >= 2 and tvb(0, 2):uint() == 0x4657 then
    return dissect_udp(tvb, pinfo, tree)
  end
  if tvb:len() >= 10 and bit.band(tvb(0, 1):uint(), 0xC0) == 0xC0 then
    return dissect_compact(tvb, pinfo, tree)
  end
  return dissect_tcp(tvb, pinfo, tree)
end

fw.prefs_changed = register
register()
