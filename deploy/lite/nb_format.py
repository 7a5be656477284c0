"""Reads and rewrites the program of a Paddle Lite ``.nb`` file (opt's naive_buffer, version 2).

Layout (lite/model_parser/model_parser.cc, SaveModelNaive): uint16 meta version, char[16] opt
version, uint64 program size, the program (a flatbuffer of lite/model_parser/flatbuffers/
framework.fbs, root ``ProgramDesc``), then the parameters (kept here byte for byte).

A flatbuffer table is decoded into a dict {field index: value}; only the fields present in the
file are kept, so decoding and encoding again gives an equivalent program. ``encode`` writes
vectors of keyed tables sorted by their key (the runtime looks attributes, inputs, outputs and
variables up by binary search), shares equal strings and equal vtables.
"""
from __future__ import annotations

import struct
from typing import Dict, List, Tuple

# field kinds: scalar struct codes, "str", ("table", NAME), ("vec", KIND)
SCHEMA: Dict[str, List] = {
    "ProgramDesc": [("vec", ("table", "BlockDesc")), ("table", "Version"),
                    ("table", "OpVersionMap")],
    "Version": ["q"],
    "BlockDesc": ["i", "i", ("vec", ("table", "VarDesc")), ("vec", ("table", "OpDesc")), "i"],
    "VarDesc": ["str", ("table", "VarType"), "?", "?"],
    "VarType": ["i", ("table", "TensorDesc"), ("table", "LoDTensorDesc"),
                ("table", "LoDTensorDesc"), ("table", "ReaderDesc"), ("table", "Tuple")],
    "TensorDesc": ["i", ("vec", "q")],
    "LoDTensorDesc": [("table", "TensorDesc"), "i"],
    "ReaderDesc": [("vec", ("table", "LoDTensorDesc"))],
    "Tuple": [("vec", "i")],
    "OpDesc": ["str", ("vec", ("table", "Var")), ("vec", ("table", "Var")),
               ("vec", ("table", "Attr")), "?"],
    "Attr": ["str", "i", "i", "f", "str", ("vec", "i"), ("vec", "f"), ("vec", "str"), "?",
             ("vec", "?"), "i", "q", ("vec", "i"), ("vec", "q"), "d", ("vec", "d")],
    "Var": ["str", ("vec", "str")],
    "OpVersionMap": [("vec", ("table", "OpVersionPair"))],
    "OpVersionPair": ["str", ("table", "OpVersion")],
    "OpVersion": ["i"],
    # param.fbs: a parameter (field 2 is the union's type, field 3 its one member)
    "ParamDesc": [("table", "VersionDesc"), "str", "B", ("table", "ParamTensor")],
    "VersionDesc": ["i", "i"],
    "ParamTensor": ["i", ("vec", "q"), ("vec", "q"), "i", ("vec", "b")],
}
# tables whose vectors the runtime searches by key (field 0, a string); a block's variables
# are read by index and keep their order
KEYED = {"Attr", "Var", "OpVersionPair"}
HEADER = struct.Struct("<H16sQ")


def split_nb(data: bytes) -> Tuple[bytes, bytes, bytes]:
    """(header, program flatbuffer, parameters) of a meta-version-2 .nb file."""
    meta, _, size = HEADER.unpack_from(data)
    if meta != 2:
        raise ValueError(f"naive_buffer meta version {meta}: only version 2 is understood")
    start = HEADER.size
    return data[:start], data[start:start + size], data[start + size:]


def join_nb(header: bytes, program: bytes, params: bytes) -> bytes:
    meta, version, _ = HEADER.unpack_from(header)
    return HEADER.pack(meta, version, len(program)) + program + params


# ---------------------------------------------------------------- decoding
def decode(buf: bytes, table: str = "ProgramDesc") -> dict:
    return _table(buf, struct.unpack_from("<I", buf, 0)[0], table)


def _table(buf, pos, name):
    vt = pos - struct.unpack_from("<i", buf, pos)[0]
    vt_size = struct.unpack_from("<H", buf, vt)[0]
    out = {}
    for j, kind in enumerate(SCHEMA[name]):
        if 4 + 2 * j >= vt_size:
            break
        off = struct.unpack_from("<H", buf, vt + 4 + 2 * j)[0]
        if off:
            out[j] = _value(buf, pos + off, kind)
    return out


def _deref(buf, at):
    return at + struct.unpack_from("<I", buf, at)[0]


def _value(buf, at, kind):
    if isinstance(kind, str) and kind != "str":
        return struct.unpack_from("<" + kind, buf, at)[0]
    target = _deref(buf, at)
    if kind == "str":
        n = struct.unpack_from("<I", buf, target)[0]
        return bytes(buf[target + 4:target + 4 + n])
    if kind[0] == "table":
        return _table(buf, target, kind[1])
    n = struct.unpack_from("<I", buf, target)[0]
    elem = kind[1]
    if isinstance(elem, str) and elem != "str":
        return list(struct.unpack_from(f"<{n}{elem}", buf, target + 4))
    return [_value(buf, target + 4 + 4 * i, elem) for i in range(n)]


# ---------------------------------------------------------------- encoding
class _Builder:
    """Builds a flatbuffer back to front, as flatbuffers' own builder does: objects made first
    lie at the end, so every unsigned offset points forward. Positions are counted from the end."""

    def __init__(self):
        self.chunks: List[bytes] = []
        self.size = 0
        self.strings: Dict[bytes, int] = {}
        self.vtables: Dict[bytes, int] = {}
        self.max_align = 4

    def _put(self, data: bytes, align: int) -> int:
        self.max_align = max(self.max_align, align)
        pad = -(self.size + len(data)) % align
        self.chunks.append(b"\0" * pad)
        self.chunks.append(data)
        self.size += pad + len(data)
        return self.size

    def string(self, s: bytes) -> int:
        if s not in self.strings:
            self.strings[s] = self._put(struct.pack("<I", len(s)) + s + b"\0", 4)
        return self.strings[s]

    def scalars(self, code: str, values: list) -> int:
        width = struct.calcsize(code)
        body = struct.pack(f"<{len(values)}{code}", *values)
        self.max_align = max(self.max_align, width)
        pad = -(self.size + len(body)) % max(width, 4)
        self.chunks.append(b"\0" * pad)
        self.chunks.append(body)
        self.size += pad + len(body)
        return self._put(struct.pack("<I", len(values)), 4)

    def offsets(self, targets: List[int]) -> int:
        n = len(targets)
        pad = -(self.size + 4 * n + 4) % 4
        start = self.size + pad + 4 * n + 4          # position of the length field
        vals = [start - 4 - 4 * i - t for i, t in enumerate(targets)]
        return self._put(struct.pack(f"<I{n}I", n, *vals), 4)

    def table(self, fields: List[Tuple[int, str, object]]) -> int:
        """fields: (index, scalar code or "off", value or target position)."""
        # widest first: no padding between fields
        fields = sorted(fields, key=lambda f: -(4 if f[1] == "off" else struct.calcsize(f[1])))
        layout, pos = [], 4
        for idx, code, val in fields:
            width = 4 if code == "off" else struct.calcsize(code)
            pos += -pos % width
            layout.append((idx, code, val, pos))
            pos += width
        align = max([4] + [struct.calcsize(c) for _, c, _, _ in layout if c != "off"])
        obj_size = pos + (-pos % align)
        pad = -(self.size + obj_size) % align
        start = self.size + pad + obj_size           # position of the table's first byte
        body = bytearray(obj_size)
        n_fields = max((f[0] for f in fields), default=-1) + 1
        slots = [0] * n_fields
        for idx, code, val, p in layout:
            slots[idx] = p
            if code == "off":
                struct.pack_into("<I", body, p, start - p - val)
            else:
                struct.pack_into("<" + code, body, p, val)
        vtable = struct.pack(f"<HH{n_fields}H", 4 + 2 * n_fields, obj_size, *slots)
        if vtable in self.vtables:
            struct.pack_into("<i", body, 0, self.vtables[vtable] - start)
        else:
            struct.pack_into("<i", body, 0, len(vtable))
        table_pos = self._put(bytes(body), align)
        assert table_pos == start
        if vtable not in self.vtables:
            self.vtables[vtable] = self._put(vtable, 2)
        return table_pos

    def finish(self, root: int) -> bytes:
        pad = -(self.size + 4) % self.max_align
        self.chunks.append(b"\0" * pad)
        self.size += pad
        total = self.size + 4
        return struct.pack("<I", total - root) + b"".join(reversed(self.chunks))


def encode(program: dict, table: str = "ProgramDesc") -> bytes:
    b = _Builder()
    return b.finish(_encode_table(b, program, table))


def _encode_table(b: _Builder, obj: dict, name: str) -> int:
    fields = []
    for j in sorted(obj):  # children first: they are referenced by the table
        kind, val = SCHEMA[name][j], obj[j]
        if isinstance(kind, str) and kind != "str":
            fields.append((j, kind, val))
        else:
            fields.append((j, "off", _encode_value(b, val, kind)))
    return b.table(fields)


def _encode_value(b: _Builder, val, kind) -> int:
    if kind == "str":
        return b.string(val)
    if kind[0] == "table":
        return _encode_table(b, val, kind[1])
    elem = kind[1]
    if isinstance(elem, str) and elem != "str":
        return b.scalars(elem, val)
    if isinstance(elem, tuple) and elem[1] in KEYED:
        val = sorted(val, key=lambda t: t[0])
    return b.offsets([_encode_value(b, v, elem) for v in val])


# ---------------------------------------------------------------- the rewrite
# Attr field holding the value of each AttrType (framework.fbs): INT i, FLOAT f, STRING s,
# INTS ints, FLOATS floats, STRINGS strings, BOOLEAN b, BOOLEANS bools, BLOCK block_idx,
# LONG l, BLOCKS blocks_idx, LONGS longs, FLOAT64S float64s, FLOAT64 float64
VALUE_FIELD = {0: 2, 1: 3, 2: 4, 3: 5, 4: 6, 5: 7, 6: 8, 7: 9, 8: 10, 9: 11, 10: 12, 11: 13,
               12: 15, 15: 14}
# written by opt for every op, read by no Lite runtime (grep of Lite v2.13-rc's sources)
UNREAD_ATTRS = (b"op_device", b"with_quant_attr")


def shrink_program(program: dict) -> dict:
    """The same program with less bytes: each attribute keeps its name, type and the one value
    field its type reads (opt writes all 16 fields, 8 of them empty vectors); ``op_device`` and
    ``with_quant_attr`` are dropped. Modifies and returns ``program``."""
    for block in program.get(0, []):
        ops = block.get(3, [])
        for op in ops:
            kept = []
            for attr in op.get(3, []):
                if attr[0] in UNREAD_ATTRS:
                    continue
                kind = attr.get(1, 0)
                kept.append({k: v for k, v in attr.items() if k in (0, 1, VALUE_FIELD[kind])})
            op[3] = kept
    return program


# ---------------------------------------------------------------- where the bytes are
def account(buf: bytes) -> Dict[str, int]:
    """Bytes of a program flatbuffer by what they describe: ``attr NAME`` (the attribute's
    tables, strings and vectors over all ops), ``op inputs/outputs``, ``ops`` (op tables, type
    strings, their vectors), ``variables``, ``vtables`` (shared between tables), ``padding``
    and ``other``. A byte reached twice (a shared string) counts once, for its first owner."""
    owner: Dict[int, str] = {}
    sizes: Dict[str, int] = {}

    def claim(start, end, who):
        for i in range(start, end):
            if i not in owner:
                owner[i] = who
                sizes[who] = sizes.get(who, 0) + 1

    def walk(pos, name, who):
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        vt_size, obj_size = struct.unpack_from("<HH", buf, vt)
        claim(vt, vt + vt_size, "vtables")
        claim(pos, pos + obj_size, who)
        for j, kind in enumerate(SCHEMA[name]):
            off = struct.unpack_from("<H", buf, vt + 4 + 2 * j)[0] if 4 + 2 * j < vt_size else 0
            if not off or (isinstance(kind, str) and kind != "str"):
                continue
            child = who
            if name == "BlockDesc":
                child = {2: "variables", 3: "ops"}.get(j, who)
            elif name == "OpDesc" and j in (1, 2):
                child = "op inputs/outputs"
            field(pos + off, kind, child, name == "OpDesc" and j == 3)

    def field(at, kind, who, attrs=False):
        target = _deref(buf, at)
        n = struct.unpack_from("<I", buf, target)[0]
        if kind == "str":
            claim(target, target + 4 + n + 1, who)
        elif kind[0] == "table":
            walk(target, kind[1], who)
        else:
            elem = kind[1]
            scalar = isinstance(elem, str) and elem != "str"
            claim(target, target + 4 + n * (struct.calcsize(elem) if scalar else 4), who)
            for i in range(0 if scalar else n):
                item = target + 4 + 4 * i
                if attrs:
                    table = _deref(buf, item)
                    name = _value(buf, table + struct.unpack_from(
                        "<H", buf, table - struct.unpack_from("<i", buf, table)[0] + 4)[0], "str")
                    field(item, elem, "attr " + name.decode())
                else:
                    field(item, elem, who)

    claim(0, 4, "other")
    walk(_deref(buf, 0), "ProgramDesc", "other")
    sizes["padding"] = len(buf) - len(owner)
    return sizes


def params_account(params: bytes) -> Dict[str, int]:
    """Bytes of the parameter part (meta version 2): tensor data and the rest (names, shapes,
    per-tensor headers)."""
    # uint16 version, uint16 size of reserved meta (0), uint16 header size, then the header:
    # uint16 tensor count, uint32 largest tensor (flatbuffers/io.cc, ParamSerializer)
    meta = struct.unpack_from("<H", params, 2)[0]
    header_size, count = struct.unpack_from("<HH", params, 4 + meta)
    pos, data = 4 + meta + 2 + header_size, 0
    for _ in range(count):
        total, offset = struct.unpack_from("<II", params, pos)
        desc = decode_param(params[pos + 4 + offset:pos + 4 + total])
        data += len(desc[3][4]) if 4 in desc.get(3, {}) else 0
        pos += 4 + total
    return {"tensor data": data, "tensor names, shapes, headers": len(params) - data}


def decode_param(buf: bytes) -> dict:
    """One ParamDesc of param.fbs (field 3: the LoDTensorDesc of the union)."""
    return decode(buf, "ParamDesc")


def main(argv=None) -> int:
    """python deploy/lite/nb_format.py MODEL.nb: the bytes of the file as it is and after
    ``shrink_program``, by component."""
    import argparse
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("nb")
    args = ap.parse_args(argv)
    header, program, params = split_nb(open(args.nb, "rb").read())
    new = encode(shrink_program(decode(program)))
    rows = {"header": (len(header), len(header))}
    rows.update({k: (v, v) for k, v in params_account(params).items()})
    rows["program"] = (len(program), len(new))
    before, after = account(program), account(new)
    for k in sorted(set(before) | set(after), key=lambda k: -before.get(k, 0)):
        rows["  " + k] = (before.get(k, 0), after.get(k, 0))
    rows["file"] = (len(header) + len(program) + len(params), len(header) + len(new) + len(params))
    print(f"{'component':34} {'this file':>10} {'rewritten':>10}")
    for k, (a, b) in rows.items():
        print(f"{k:34} {a:>10,} {b:>10,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
