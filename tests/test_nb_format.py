"""deploy/lite/nb_format.py: the flatbuffer codec of Paddle Lite's .nb program and its rewrite.

These run without the Lite toolchain, on a program built here. That Lite loads a rewritten file
and computes the same outputs is checked where the toolchain is: the export itself runs each
rewritten x86 file against opt's (lite_tool.shrink_nb), tests/test_export.py checks the sizes,
tests/test_lite_arm.py runs the rewritten ARM files under qemu.
"""
import importlib.util
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nb_format", ROOT / "deploy/lite/nb_format.py")
F = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(F)

EMPTY_VECTORS = {5: [], 6: [], 7: [], 9: [], 12: [], 13: [], 15: []}


def attr(name, kind, field, value):
    """An attribute as opt writes it: every vector field present, most of them empty."""
    return {0: name, 1: kind, 4: b"", **EMPTY_VECTORS, field: value}


def program():
    conv = {0: b"conv2d",
            1: [{0: b"Input", 1: [b"image"]}, {0: b"Filter", 1: [b"conv2d_0.w_0"]}],
            2: [{0: b"Output", 1: [b"conv2d_0.tmp_0"]}],
            3: [attr(b"strides", 3, 5, [2, 2]), attr(b"op_device", 2, 4, b""),
                attr(b"Filter0_scale", 4, 6, [0.5, 0.25]), attr(b"groups", 0, 2, 1),
                attr(b"enable_int8", 6, 8, True), attr(b"with_quant_attr", 6, 8, False)]}
    tensor = {0: 5, 1: [1, 3, -1, -1]}
    variables = [{0: name, 1: {0: 7, 2: {0: tensor}}, 2: persistable}
                 for name, persistable in ((b"image", False), (b"conv2d_0.w_0", True),
                                           (b"conv2d_0.tmp_0", False))]
    return {0: [{0: 0, 1: -1, 2: variables, 3: [conv]}], 1: {0: 2006002}}


def test_round_trip_sorts_keyed_vectors_and_keeps_the_variable_order():
    p = program()
    back = F.decode(F.encode(p))
    op = back[0][0][3][0]
    # the runtime finds attributes and inputs by binary search: sorted by name (strcmp)
    assert [a[0] for a in op[3]] == sorted(a[0] for a in p[0][0][3][0][3])
    assert [v[0] for v in op[1]] == [b"Filter", b"Input"]
    assert [v[0] for v in back[0][0][2]] == [b"image", b"conv2d_0.w_0", b"conv2d_0.tmp_0"]
    for a in op[3]:
        assert a == next(x for x in p[0][0][3][0][3] if x[0] == a[0])
    assert back[1] == {0: 2006002} and back[0][0][2][0][1][2][0][1] == [1, 3, -1, -1]


def test_offsets_and_alignment_follow_flatbuffers():
    buf = F.encode(program())
    assert len(buf) % 8 == 0
    # the dims vector (int64) of the first variable: elements 8-aligned, length before them
    root = struct.unpack_from("<I", buf, 0)[0]
    assert root < len(buf)
    found = []

    def scan(pos, name):
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        vt_size, obj_size = struct.unpack_from("<HH", buf, vt)
        assert vt % 2 == 0 and pos % 4 == 0 and pos + obj_size <= len(buf)
        for j, kind in enumerate(F.SCHEMA[name]):
            off = struct.unpack_from("<H", buf, vt + 4 + 2 * j)[0] if 4 + 2 * j < vt_size else 0
            if not off or (isinstance(kind, str) and kind != "str"):
                continue
            target = pos + off + struct.unpack_from("<I", buf, pos + off)[0]
            assert target > pos + off  # unsigned offsets point forward
            if kind == "str":
                n = struct.unpack_from("<I", buf, target)[0]
                assert buf[target + 4 + n] == 0
            elif kind[0] == "table":
                scan(target, kind[1])
            elif kind == ("vec", "q"):
                found.append(target)
                assert (target + 4) % 8 == 0
            elif isinstance(kind[1], tuple) or kind[1] == "str":
                n = struct.unpack_from("<I", buf, target)[0]
                for i in range(n):
                    at = target + 4 + 4 * i
                    item = at + struct.unpack_from("<I", buf, at)[0]
                    if kind[1] != "str":
                        scan(item, kind[1][1])
    scan(root, "ProgramDesc")
    assert found


def test_shrink_keeps_what_the_runtime_reads():
    shrunk = F.shrink_program(F.decode(F.encode(program())))
    attrs = {a[0]: a for a in shrunk[0][0][3][0][3]}
    assert set(attrs) == {b"strides", b"Filter0_scale", b"groups", b"enable_int8"}
    assert attrs[b"strides"] == {0: b"strides", 1: 3, 5: [2, 2]}
    assert attrs[b"Filter0_scale"] == {0: b"Filter0_scale", 1: 4, 6: [0.5, 0.25]}
    assert attrs[b"groups"] == {0: b"groups", 1: 0, 2: 1}
    assert attrs[b"enable_int8"] == {0: b"enable_int8", 1: 6, 8: True}
    # inputs, outputs and variables untouched
    assert shrunk[0][0][2] == program()[0][0][2]
    a, b = F.encode(program()), F.encode(shrunk)
    assert len(b) < 0.7 * len(a)
    assert F.encode(F.shrink_program(F.decode(b))) == b  # a second rewrite changes nothing


def test_account_covers_every_byte():
    buf = F.encode(program())
    sizes = F.account(buf)
    assert sum(sizes.values()) == len(buf)
    assert sizes["attr op_device"] > 0 and "attr op_device" not in F.account(
        F.encode(F.shrink_program(F.decode(buf))))


def test_nb_header_split_and_join():
    prog = F.encode(program())
    nb = struct.pack("<H16sQ", 2, b"v2.13-rc", len(prog)) + prog + b"PARAMS"
    header, p, params = F.split_nb(nb)
    assert p == prog and params == b"PARAMS"
    assert F.join_nb(header, p[:8] + p[8:], params) == nb
