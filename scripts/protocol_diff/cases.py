"""Case families for run.py. Each family returns a list of bytes or (bytes, opts): opts are
run.compare's (chunks, delay, timeout, sentinel, halfclose)."""
import base64, itertools


def b(s):
    return s.encode("latin-1") if isinstance(s, str) else s


SEED = b"set k 0 0 2\r\nhi\r\nset n 0 0 2\r\n10\r\nset p 1 0 5\r\nhello\r\n"


def mg():
    out = []
    flagsets = ["", "v", "s", "f", "t", "c", "k", "h", "l", "u", "O123", "q", "v q", "k q", "v f",
                "s v f t c k O1", "v k O1 q", "T30 v", "N30 v", "N30 s v t c", "R30 v c", "E5 v",
                "I v", "P", "L", "MS", "D1", "J1", "C1", "F1", "S1 v", "x", "X", "W", "Z", "!", "9",
                "O", "T", "N", "R", "Tx", "T-1", "T99999999999999999999", "N-1", "Nx", "O" + "a" * 32,
                "O" + "a" * 33, "v v", "q q", "k k", "O1 O2", "b", "v O1 q k", "t v", "h l t v"]
    for key in ["k", "nope", "p"]:
        for fs in flagsets:
            out.append(b"%s" % SEED + b(f"mg {key} {fs}".rstrip() + "\r\n"))
    # quiet pipelines
    out.append(SEED + b"mg nope v q\r\nmg k v q\r\nmg nope2 q k O5\r\nmn\r\n")
    out.append(SEED + b"mg nope v q O1\r\nmg nope v q O2\r\nmg k q\r\nmg k s q\r\nmn\r\nmg nope v q\r\nmn\r\n")
    out.append(SEED + b"mg nope v q x\r\nmn\r\n")
    out.append(SEED + b"mg nope q q\r\nmn\r\n")
    out.append(SEED + b"mg nope v q Tx\r\nmn\r\n")
    out.append(SEED + b"mg k v q b\r\nmn\r\n")
    # flag count boundaries (ntokens 20/21) with and without v
    names = ["s", "t", "c", "k", "O1", "h", "l", "u", "N30", "T30", "R30", "P", "L", "I", "C1", "D1", "J1", "MS"]
    for n in range(14, 20):
        for withv in (True, False):
            fl = (["v"] if withv else []) + names[: n - (1 if withv else 0)]
            out.append(SEED + b("mg k " + " ".join(fl) + "\r\n"))
            out.append(SEED + b("mg k " + " ".join(fl) + " q\r\n") + b"mn\r\n")
            out.append(SEED + b("mg p " + " ".join(fl) + "\r\n"))
            out.append(SEED + b("mg nope " + " ".join(fl) + "\r\n"))
    # 23+ tokens (tokenizer remainder)
    out.append(SEED + b("mg k " + " ".join(["v"] * 25) + "\r\n"))
    out.append(SEED + b("mg k " + " ".join(names) + " v f q k\r\nmn\r\n"))
    # keys
    for key in ["a" * 249, "a" * 250, "a" * 251, "a" * 300, "k\x01", "k\x7f", "\xc3\xa9", "k\tx", "k\x0b"]:
        out.append(b(f"set {key} 0 0 1\r\nx\r\nmg {key} v k\r\nmg {key} s v f\r\nmd {key}\r\nmg {key} v\r\n"))
    # base64
    for raw in [b"k", b"key with space", b"\x00\x01\x02", b"a" * 187, b"a" * 188, b"a" * 250, b"a" * 251, b"\r\n",
                b"k\xff", b"p"]:
        e = base64.b64encode(raw)
        out.append(SEED + b"mg " + e + b" b v k\r\nms " + e + b" 2 b k c\r\nhi\r\nmg " + e + b" b v k O9 s f\r\nmg " + e + b" b k q\r\nmn\r\n")
        out.append(SEED + b"mg " + e + b" b q v\r\nmd " + e + b" b q\r\nmd " + e + b" b\r\nma " + e + b" b N0 J3 v k\r\nmn\r\n")
    for bad in ["a", "ab", "abc", "a===", "====", "!!!!", "a!bc", "YQ", "YQ=", "YQ==x", "Y Q==", "YWJj\x01ZGVm", "YWJjZA===",
                "YW=j", "=YWJ", "aGk=aGk=", "+/+/"]:
        out.append(SEED + b(f"mg {bad} b v\r\nms {bad} 2 b\r\nhi\r\nmd {bad} b\r\nma {bad} b\r\nme {bad} b\r\nmg {bad} b q\r\nmn\r\n"))
    out.append(SEED + b"mg " + base64.b64encode(b"k") + b" b v\r\n")  # 'k' stored via set -> found by b64
    out.append(SEED + b"mg cA== b v k f\r\n")  # p with flags 1
    return out


def ms():
    out = []
    flagsets = ["", "q", "T0", "T-1", "T30", "F0", "F1", "F4294967295", "F4294967296", "F-1", "Fx", "C0", "C1", "Cx",
                "C-1", "I", "I T30", "k", "O1", "O" + "z" * 32, "O" + "z" * 33, "c", "b", "MS", "ME", "MA", "MP", "MR",
                "MX", "Ms", "Me", "M", "MEE", "N30 MA", "N30 MP", "N0 MA", "S2", "s", "t", "f", "v", "h", "l", "u", "x",
                "E5", "E0", "P", "L", "D1", "J1", "R30", "T30 T30", "q q", "k c O77 q", "k c O77 T0 F5 MS", "Tx", "T",
                "Nx", "N", "R", "O", "k k", "c b"]
    for key in ["k", "nope"]:
        for fs in flagsets:
            out.append(SEED + b(f"ms {key} 2 {fs}".rstrip() + "\r\nzz\r\nmg {key} v f\r\nmn\r\n".replace("{key}", key)))
    # datalen variants
    for dl in ["-1", "x", "2x", "+2", "02", " 2", "0x2", "2147483646", "2147483647", "4294967298", "1048576",
               "1048577", "99999999999999999999", "", "-0", "0"]:
        out.append(SEED + b(f"ms k {dl} T0\r\nzz\r\nmg k v\r\n"))
        out.append(SEED + b(f"ms k {dl}\r\nzz\r\nmg k v\r\n"))
    # chunk termination
    for data in [b"zz\n", b"zz\rX", b"zzX\r\n", b"zz", b"z\r\n", b"zz\r\r\n", b"zz\n\r\n", b"zz\x00\r\n"]:
        out.append((SEED + b"ms k 2\r\n" + data + b"mg k v\r\nmn\r\n", {"timeout": 1.0}))
        out.append((SEED + b"ms k 2 q\r\n" + data + b"mg k v\r\nmn\r\n", {"timeout": 1.0}))
        out.append((SEED + b"ms k 2 MX\r\n" + data + b"mg k v\r\nmn\r\n", {"timeout": 1.0}))
        out.append((SEED + b"ms k 2 O" + b"z" * 40 + b"\r\n" + data + b"mg k v\r\nmn\r\n", {"timeout": 1.0}))
    # too long key / tokens
    for key in ["a" * 250, "a" * 251]:
        out.append(SEED + b(f"ms {key} 2\r\nzz\r\nmg {key} v\r\n"))
        out.append(SEED + b(f"ms {key} 2 q\r\nzz\r\nmn\r\n"))
    names = ["T0", "F1", "C0", "k", "O1", "c", "I", "MS", "N30", "s", "t", "f", "v", "h", "l", "u", "P", "L", "R30"]
    for n in range(15, 21):
        out.append(SEED + b("ms k 2 " + " ".join(names[:n]) + "\r\nzz\r\nmg k v\r\n"))
    # base64 + data
    out.append(SEED + b"ms " + base64.b64encode(b"a b") + b" 2 b k O1 c\r\nzz\r\nmg " + base64.b64encode(b"a b") + b" b v k\r\n")
    # invalid cas compare
    out.append(SEED + b"ms k 2 C999999\r\nzz\r\nms nope 2 C1\r\nzz\r\nms k 2 C999999 q\r\nzz\r\nmn\r\n")
    # append/prepend with vivify
    out.append(SEED + b"ms nope 2 MA\r\nzz\r\nms nope 2 MA N30\r\nzz\r\nmg nope v t f\r\nms nope2 2 MP N0 F7\r\nyy\r\nmg nope2 v f t\r\n")
    out.append(SEED + b"ms k 2 MA F9\r\nzz\r\nmg k v f\r\nms k 2 MR\r\nrr\r\nmg k v\r\nms nope 2 MR\r\nrr\r\nms nope 2 ME q\r\nee\r\nms nope 2 ME q\r\nee\r\nmn\r\n")
    # invalidate flow
    out.append(SEED + b"md k I T30\r\nmg k v c\r\nms k 2 I\r\nnn\r\nmg k v\r\nms k 2 I\r\nmm\r\nmg k v\r\n")
    # too large with mode/flags
    big = b"v" * (1024 * 1024 + 10)
    out.append(SEED + b"ms k %d\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms k %d q\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms k %d MA\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms k %d MX\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms k %d x\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms k %d O%s\r\n" % (len(big), b"z" * 40) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms k %d b\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms aw== %d b\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    out.append(SEED + b"ms k %d MS I\r\n" % len(big) + big + b"\r\nmg k v\r\n")
    # flags 1 non-pickles
    for val in [b"hello", b"\x80", b"\x80\x02", b"\x80\x04\x95", b"(lp0\n", b"\x80\x05K\x01.", b"N.", b"garbage.",
                b"\x80\x02cos\nsystem\n", b"I1\n.", b"\x80\x03X\x03"]:
        out.append(b"ms pk %d F1\r\n" % len(val) + val + b"\r\nmg pk v\r\nmg pk v f\r\nmg pk v q k\r\nmg pk s\r\nget pk\r\ngets pk\r\nmn\r\n")
        out.append(b"set pk 1 0 %d\r\n" % len(val) + val + b"\r\nget pk k\r\nmg pk v s t k O1\r\ngat 100 pk\r\nmn\r\n")
    return out


def md():
    out = []
    flagsets = ["", "q", "I", "I T30", "T30", "I q", "I T30 q", "k", "O1", "k O1 q", "b", "C1", "C999999", "C0", "Cx",
                "x", "v", "s", "f", "t", "c", "h", "l", "u", "N30", "R30", "MS", "D1", "J1", "F1", "E1", "P", "L",
                "q q", "I I", "Tx", "T", "O" + "y" * 33, "x q", "T-1 I", "S1"]
    for key in ["k", "nope"]:
        for fs in flagsets:
            out.append(SEED + b(f"md {key} {fs}".rstrip() + "\r\nmg {key} v c\r\nmn\r\n".replace("{key}", key)))
    out.append(SEED + b"md k q\r\nmd k q\r\nmd nope q\r\nmd k q x\r\nmn\r\n")
    out.append(SEED + b"md\r\nmd \r\nmd k 1 2 3\r\n")
    out.append(SEED + b("md " + "a" * 251 + "\r\nmd " + "a" * 251 + " q\r\nmn\r\n"))
    out.append(SEED + b"md k " + b" ".join([b"k"] * 20) + b"\r\n")
    out.append(SEED + b"md k k O1 I T30 q\r\nmg k v c k O2\r\nmg k v c\r\nmn\r\n")
    return out


def ma():
    out = []
    flagsets = ["", "v", "q", "v q", "N0", "N0 J5", "N0 J5 v", "N30 J5 v t c k O1", "MI", "MD", "M+", "M-", "Mi", "Md",
                "MX", "M", "MII", "D5", "D0", "D-1", "Dx", "D18446744073709551615", "D18446744073709551616", "J-1",
                "Jx", "N-1", "Nx", "T30", "Tx", "C1", "C999999", "Cx", "k", "O1", "O" + "q" * 33, "b", "x", "s",
                "f", "h", "l", "u", "I", "E1", "v v", "D1 D2", "N0 J18446744073709551615 v", "MD D100 v", "c", "t"]
    for key in ["n", "k", "nope", "big", "sp"]:
        for fs in flagsets:
            out.append(SEED + b"set big 0 0 20\r\n18446744073709551615\r\nset sp 0 0 3\r\n 10\r\n" +
                       b(f"ma {key} {fs}".rstrip() + "\r\nmg {key} v\r\nmn\r\n".replace("{key}", key)))
    out.append(SEED + b"ma nope q\r\nma n q\r\nma k q\r\nma n v q\r\nmn\r\n")
    out.append(SEED + b"set lz 0 0 3\r\n007\r\nma lz MD v\r\nmg lz v\r\nma lz MI D100 v\r\nmg lz v\r\n")
    out.append(SEED + b"set long 0 0 25\r\n1234567890123456789012345\r\nma long v\r\nincr long 1\r\n")
    out.append(SEED + b"set neg 0 0 2\r\n-5\r\nma neg v\r\nincr neg 1\r\ndecr neg 1\r\n")
    out.append(SEED + b"ma\r\nma \r\nma n 1 2\r\n")
    return out


def mn_me():
    out = []
    for s in [b"mn\r\n", b"mn x\r\n", b"mn x y z\r\n", b"mn \r\n", b"MN\r\n", b"mn\n", b"me\r\n", b"me k\r\n", b"me nope\r\n",
              b"me k x\r\n", b"me k b\r\n", b"me aw== b\r\n", b"me " + b"a" * 251 + b"\r\n", b"me p\r\n", b"mx k\r\n",
              b"m\r\n", b"mgx k v\r\n", b"mg\r\n", b"ms\r\n", b"mee k\r\n", b"me k q\r\n", b"me k 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24\r\n"]:
        out.append(SEED + s)
    return out


def classic_store():
    out = []
    for cmd in ["set", "add", "replace", "append", "prepend"]:
        for key in ["k", "nope"]:
            for args in ["0 0 2", "0 0 2 noreply", "0 0 2 norepl", "0 0 2 NOREPLY", "0 0 2 x", "0 0 2 noreply x",
                         "0 0 2 x noreply", "noreply 0 0 2", "0 noreply 0 2", "4294967295 0 2", "4294967296 0 2",
                         "18446744073709551616 0 2", "-1 0 2", "-0 0 2", "+5 0 2", "0x1 0 2", "01 0 2", "0 -1 2",
                         "0 -2147483648 2", "0 -2147483649 2", "0 2147483647 2", "0 2147483648 2",
                         "0 9999999999999 2", "0 2592000 2", "0 2592001 2", "0 0x10 2", "0 +5 2", "0 0 02", "0 0 +2",
                         "0 0 3", "0 0 1", "0 0 -2", "0 0 x", "0 0", "0", "", "0 0 2 0 0", "0 0 2 1 2 3 4 5 6 7 8"]:
                line = b(f"{cmd} {key} {args}".rstrip() + "\r\nzz\r\n")
                out.append(SEED + line + b(f"get {key}\r\n"))
    # cas
    for args in ["0 0 2 1", "0 0 2 999999", "0 0 2 -1", "0 0 2 x", "0 0 2 18446744073709551615",
                 "0 0 2 18446744073709551616", "0 0 2 1 noreply", "0 0 2", "0 0 2 1 2", "0 0 2 1 noreply x",
                 "0 0 2 noreply"]:
        out.append(SEED + b(f"cas k {args}\r\nzz\r\nget k\r\ncas nope {args}\r\nzz\r\n"))
    out.append(SEED + b"gets k\r\ncas k 0 0 2 0\r\nzz\r\n")
    # data length mismatches
    for data in [b"z\r\n", b"zzz\r\n", b"zz\n", b"zz\r", b"zz\rX\r\n", b"zzzzzzzz\r\n", b"\r\n\r\n", b"zz\r\n\r\n"]:
        out.append((SEED + b"set k 0 0 2\r\n" + data + b"get k\r\n", {"timeout": 1.0}))
        out.append((SEED + b"set k 0 0 2 noreply\r\n" + data + b"get k\r\n", {"timeout": 1.0}))
        out.append((SEED + b"append k 0 0 2\r\n" + data + b"get k\r\n", {"timeout": 1.0}))
        out.append((SEED + b"cas k 0 0 2 1\r\n" + data + b"get k\r\n", {"timeout": 1.0}))
    # too large
    big = b"v" * (1024 * 1024)
    for cmd in ["set", "add", "replace", "append", "prepend"]:
        out.append(SEED + b(f"{cmd} k 0 0 {len(big)}\r\n") + big + b"\r\nget k\r\n")
        out.append(SEED + b(f"{cmd} k 0 0 {len(big)} noreply\r\n") + big + b"\r\nget k\r\n")
    out.append(SEED + b"cas k 0 0 %d 1\r\n" % len(big) + big + b"\r\nget k\r\n")
    out.append(SEED + b"set k 0 0 1048400\r\n" + b"v" * 1048400 + b"\r\nget k x\r\n")
    # key lengths
    for kl in [249, 250, 251, 1000]:
        key = "a" * kl
        out.append(SEED + b(f"set {key} 0 0 2\r\nzz\r\nget {key}\r\nappend {key} 0 0 1\r\nz\r\ndelete {key}\r\nincr {key} 1\r\ntouch {key} 1\r\n"))
        out.append(SEED + b(f"set {key} 0 0 2 noreply\r\nzz\r\nmn\r\n"))
    return out


def classic_get():
    out = []
    for line in ["get", "get ", "gets", "gets ", "get k", "get  k", "get k ", "get k k k", "get nope", "get k nope p",
                 "gets k p nope", "get " + "a" * 250, "get " + "a" * 251, "get k " + "a" * 251 + " p",
                 "gets k " + "a" * 251, "get " + "a" * 251 + " k", "get " + " ".join(["k"] * 30),
                 "get " + " ".join(f"x{i}" for i in range(5000)) + " k",
                 "gat", "gat 10", "gat 10 k", "gat 10 k nope p", "gats 10 k p", "gat x k", "gat -1 k", "gat 0 k",
                 "gat 99999999999999999999 k", "gat 10 " + "a" * 251, "gats 10 k " + "a" * 251, "gat 10 k k",
                 "gat noreply k", "gat 10 k noreply", "bget k", "bget k p", "get k noreply",
                 "gats", "gats 10", "gat 2147483648 k", "gat +5 k", "gat 5x k", "get k\tp", "get k\x00 p"]:
        out.append(SEED + b(line + "\r\n"))
    # preset many keys
    setup = b"".join(b"set m%d 0 0 1\r\n%d\r\n" % (i, i % 10) for i in range(200))
    out.append(SEED + setup + b("get " + " ".join(f"m{i}" for i in range(200)) + "\r\n"))
    out.append(SEED + setup + b("gets " + " ".join(f"m{i}" for i in range(0, 200, 3)) + " nope\r\n"))
    out.append(SEED + setup + b("get " + " ".join(f"m{i}" for i in range(200)) + " " + "a" * 251 + "\r\n"))
    return out


def arith():
    out = []
    setup = SEED + b"set big 0 0 20\r\n18446744073709551615\r\nset z 0 0 1\r\n0\r\nset lz 0 0 4\r\n0010\r\nset sp 0 0 3\r\n 10\r\nset t 0 0 3\r\n10 \r\nset neg 0 0 2\r\n-1\r\nset long 0 0 22\r\n1234567890123456789012\r\nset e 0 0 0\r\n\r\n"
    for cmd in ["incr", "decr"]:
        for key in ["n", "k", "nope", "big", "z", "lz", "sp", "t", "neg", "long", "e"]:
            for d in ["1", "0", "100", "-1", "x", "18446744073709551615", "18446744073709551616", "1 noreply", "",
                      "1 2", "1 noreply x", "noreply", "+1", " 1", "01", "1x", "99999999999999999999999"]:
                out.append(setup + b(f"{cmd} {key} {d}".rstrip() + f"\r\nget {key}\r\n"))
    return out


def touch_delete():
    out = []
    for line in ["touch k 10", "touch nope 10", "touch k", "touch k x", "touch k -1", "touch k 10 noreply",
                 "touch k noreply", "touch k 10 x", "touch k 10 x y", "touch", "touch k 99999999999999999999",
                 "touch " + "a" * 251 + " 1", "touch k 0", "touch k +1", "touch k 1x",
                 "delete k", "delete nope", "delete k 0", "delete k noreply", "delete k 0 noreply", "delete k 1",
                 "delete k 00", "delete k -0", "delete k 0 0", "delete k  0", "delete k 1 noreply", "delete k x",
                 "delete k noreply x", "delete k 0 noreply x", "delete", "delete " + "a" * 251,
                 "delete " + "a" * 251 + " noreply", "delete k noreply noreply", "delete p 0", "delete k NOREPLY"]:
        out.append(SEED + b(line + "\r\nget k\r\n"))
    return out


def misc():
    out = []
    for line in ["verbosity", "verbosity 1", "verbosity 0", "verbosity 1 noreply", "verbosity noreply", "verbosity x",
                 "verbosity -1", "verbosity 99999999999999999999", "verbosity 1 2", "verbosity 1 2 3", "verbosity 1 2 3 4",
                 "verbosity 0 noreply x", "version", "version x", "version x y z", "VERSION", "flush_all", "flush_all 0",
                 "flush_all noreply", "flush_all 0 noreply", "flush_all -1", "flush_all x", "flush_all 1 2",
                 "flush_all 99999999999999999999", "flush_all noreply noreply", "flush_all 0 0 0", "flush_all 2592001",
                 "flush_all +0", "stats", "stats settings", "stats items", "stats slabs", "stats sizes", "stats conns",
                 "stats detail", "stats detail on", "stats detail off", "stats detail dump", "stats detail x",
                 "stats cachedump", "stats cachedump 1", "stats cachedump 1 1", "stats cachedump x y",
                 "stats reset", "stats nosuch", "stats extstore", "stats 1 2 3 4", "stats  ", "STATS",
                 "quit x", "quit", "QUIT", "bogus", "GET k", "Set k 0 0 1", "gets", "incr", "decr", "touch", "cas",
                 "append", "prepend", "replace", "add", "set", "watch", "watch fetchers", "lru_crawler metadump all",
                 "lru_crawler", "slabs reassign 1 2", "shutdown", "cache_memlimit", "misbehave", "debugtime",
                 "mn", "me", "version noreply"]:
        out.append(SEED + b(line + "\r\nget k\r\n"))
    return out


def lines():
    out = []
    for raw in [b"\r\n", b"\n", b"\r", b" \r\n", b"   \r\n", b"\t\r\n", b"\r\r\n", b"\n\n\n", b"get k\n", b"get k\r\r\n",
                b"\tget k\r\n", b" get k\r\n", b"get k\rget p\r\n", b"get k \r\n", b"\x00\r\n", b"\x00get k\r\n",
                b"get\x00 k\r\n", b"\x01\r\n", b"\xff\xff\r\n", b"\x80\r\n", b"ge\x00t k\r\n", b"get k\x00\r\n", b"\x0b\r\n",
                b"get k\r\n\r\nget p\r\n", b"mg k v\n", b"ms k 2\nzz\nmg k v\n", b"set k 0 0 2\nzz\r\nget k\n",
                b"get \r\n", b"\r\nmn\r\n",
                # An unknown command ending in HTTP/ closes; known commands and other places do not.
                b"GET / HTTP/1.0\r\n", b"HTTP/1.1\r\n", b"DELETE HTTP/1.1\r\n", b"GET / HTTP/1.0 x\r\n",
                b"get HTTP/1.0\r\n", b"gx HTTP/1.0\r\n", b"mx HTTP/1.0\r\n", b"x HTTP/1.0\r\n",
                b"lru HTTP/1.0\r\n", b"verbosity 1 2 HTTP/1.0\r\n", b"misbehave HTTP/1.0\r\n",
                b"POST" + b" a" * 21 + b" HTTP/1.1 x\r\n", b"GET" + b" a" * 22 + b" HTTP/1.1\r\n"]:
        out.append(SEED + raw)
    # long lines in one write
    for n in [2040, 2046, 2047, 2048, 2049, 2050, 3000, 8000, 16380, 16384, 16390, 20000, 70000]:
        out.append((SEED + b"x" * n + b"\r\n", {"timeout": 1.5}))
        out.append((SEED + b"get " + b"k " * (n // 2) + b"\r\n", {"timeout": 1.5}))
        out.append((SEED + b"gets " + (b"k " * (n // 2)) + b"\r\n", {"timeout": 1.5}))
        out.append((SEED + b"gat 10 " + b"k " * (n // 2) + b"\r\n", {"timeout": 1.5}))
        out.append((SEED + b"mg k " + b" " * n + b"v\r\n", {"timeout": 1.5}))
        out.append((SEED + b"set k 0 0 2" + b" " * n + b"\r\nzz\r\nget k\r\n", {"timeout": 1.5}))
        out.append((SEED + b" " * n + b"get k\r\n", {"timeout": 1.5}))
        # Numbers padded with zeros and long meta flags: the proxy sends them upstream short.
        zeros = b"0" * n
        out.append((SEED + b"touch k " + zeros + b"5\r\nmg k v\r\n", {"timeout": 1.5}))
        out.append((SEED + b"set k 0 -" + zeros + b"1 1\r\nz\r\nget k\r\n", {"timeout": 1.5}))
        out.append((SEED + b"mg k v T" + zeros + b"9 N" + zeros + b"x\r\n", {"timeout": 1.5}))
        out.append((SEED + b"ma n D" + zeros + b"2 O1 v s" + b"s" * n + b"\r\n", {"timeout": 1.5}))
        out.append((SEED + b"stats " + b"x" * n + b"\r\nmn\r\n", {"timeout": 1.5}))
    for sp in [50, 99, 100, 101, 150]:
        out.append((SEED + b" " * sp + b"get " + b"k " * 2000 + b"\r\n", {"timeout": 1.5}))
        out.append((SEED + b" " * sp + b"gets " + b"k " * 2000 + b"\r\n", {"timeout": 1.5}))
    out.append((SEED + b"GET " + b"k " * 2000 + b"\r\n", {"timeout": 1.5}))
    out.append((SEED + b"get\t" + b"k " * 2000 + b"\r\n", {"timeout": 1.5}))
    out.append((SEED + b"get " + b"k " * 2000 + b"\n", {"timeout": 1.5}))
    out.append((SEED + b"get" + b" " * 3000 + b"k\r\n", {"timeout": 1.5}))
    out.append((SEED + b"gets" + b" " * 3000 + b"k\r\n", {"timeout": 1.5}))
    out.append((SEED + b"get " + b"a" * 3000 + b"\r\n", {"timeout": 1.5}))
    # no newline at all, then close
    out.append((SEED + b"x" * 3000, {"timeout": 1.5}))
    out.append((SEED + b"get " + b"k " * 3000, {"timeout": 1.5}))
    return out


def split():
    out = []
    sess = (SEED + b"get k p nope\r\nms m 2 T0 F3 q\r\nzz\r\nmg m v f q k\r\nmg nope v q\r\nmn\r\nincr n 5\r\n"
            b"set x 0 0 3 noreply\r\nabc\r\nappend x 0 0 1\r\nd\r\nget x\r\ndelete x 0\r\nbogus\r\nma c N0 J1 v\r\n"
            b"md m q\r\nmg m v\r\nset y 0 0 1\r\nyy\r\nget y\r\n")
    for ch in [1, 2, 3, 5, 7, 13, 64]:
        out.append((sess, {"chunks": ch, "delay": 0.0005}))
    # long lines split in small writes (memcached sees > 2048 w/o newline)
    for n in [1500, 2040, 2060, 2100, 3000, 5000]:
        out.append((SEED + b"x" * n + b"\r\nget k\r\n", {"chunks": 512, "delay": 0.02, "timeout": 1.5}))
        out.append((SEED + b"get " + b"k " * (n // 2) + b"\r\n", {"chunks": 512, "delay": 0.02, "timeout": 1.5}))
        out.append((SEED + b"mg k" + b" " * n + b"v\r\n", {"chunks": 512, "delay": 0.02, "timeout": 1.5}))
        out.append((SEED + b"set k 0 0 2" + b" " * n + b"\r\nzz\r\nget k\r\n", {"chunks": 512, "delay": 0.02, "timeout": 1.5}))
        out.append((SEED + b" " * n + b"get k\r\n", {"chunks": 512, "delay": 0.02, "timeout": 1.5}))
        out.append((SEED + b"gat 1 " + b"k " * (n // 2) + b"\r\n", {"chunks": 512, "delay": 0.02, "timeout": 1.5}))
    # split inside data blocks
    out.append((SEED + b"set k 0 0 10\r\n0123456789\r\nget k\r\n", {"chunks": 1, "delay": 0.001}))
    out.append((SEED + b"ms k 10 T0\r\n0123456789\r\nmg k v\r\n", {"chunks": 1, "delay": 0.001}))
    out.append((SEED + b"set k 0 0 2\r\nzzz\r\nget k\r\n", {"chunks": 1, "delay": 0.001}))
    return out


def pipeline():
    out = []
    p = b"".join(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(str(i)), str(i).encode()) for i in range(500))
    p += b"".join(b"get k%d k%d\r\n" % (i, i + 1) for i in range(500))
    out.append(p)
    q = b"".join(b"ms q%d 1 q\r\nx\r\nmg q%d v q\r\nmg nq%d v q\r\nmd nq%d q\r\n" % (i, i, i, i) for i in range(300)) + b"mn\r\n"
    out.append(q)
    r = b"".join(b"bogus%d\r\nincr k 1\r\nmg nope q\r\nmn\r\n" % i for i in range(300))
    out.append(r)
    s = b"".join(b"set a 0 0 1 noreply\r\n%d\r\nincr a 1 noreply\r\ndecr a 1 noreply\r\ndelete b noreply\r\ntouch a 1 noreply\r\n" % (i % 10) for i in range(300)) + b"get a\r\n"
    out.append(s)
    t = b"".join(b"get k\r\nquit\r\nget k\r\n" for _ in range(3))
    out.append(t)
    out.append(SEED + b"get k\r\nmg k v\r\nquit\r\nmg k v\r\n")
    out.append(SEED + b"mg k v q\r\nmg nope v q\r\nquit\r\n")
    out.append((SEED + b"set k 0 0 2\r\nzz\r\nquit", {"sentinel": False, "timeout": 1.0}))
    out.append((SEED + b"ms k 5 q\r\nabc", {"sentinel": False, "timeout": 1.0}))
    return out


FAMILIES = dict(mg=mg, ms=ms, md=md, ma=ma, mn_me=mn_me, classic_store=classic_store, classic_get=classic_get,
                arith=arith, touch_delete=touch_delete, misc=misc, lines=lines, split=split, pipeline=pipeline)


def halfclose():
    """Requests followed by shutdown(SHUT_WR), no sentinel."""
    o = {"sentinel": False, "halfclose": True, "timeout": 2.0}
    out = []
    for tail in [b"", b"get k\r\n", b"get k", b"mg k v", b"set x 0 0 100\r\nabc", b"set x 0 0 2\r\nab",
                 b"set x 0 0 2\r\nab\r", b"ms x 100\r\nabc", b"ms x 2 q\r\nab", b"mg k v q\r\nmg nope v q\r\n",
                 b"mg nope v q", b"get " + b"a" * 251 + b"\r\n", b"x" * 3000, b"x" * 3000 + b"\r\n", b"quit\r\n",
                 b"set x 0 0 2000000\r\nabc", b"bogus", b"incr n 1", b"delete k noreply\r\n"]:
        out.append((SEED + tail, o))
        out.append((b"mn\r\n" + tail, o))
    return out


def dropquirk():
    """memcached culls unsent replies when a retrieval has a key > 250 bytes."""
    L = b"a" * 251
    out = []
    for pre in [b"", b"set a 0 0 1\r\n1\r\n", b"bogus\r\n", b"version\r\n", b"mn\r\n", b"get a\r\n", b"mg a v\r\n",
                b"ms a 1\r\n1\r\n", b"incr a 1\r\n", b"delete a\r\n", b"touch a 1\r\n", b"verbosity 1\r\n", b"stats\r\n",
                b"set a 0 0 1\r\n1\r\nget a\r\nset b 0 0 1\r\n2\r\n", b"mg a v q\r\nmg b v q\r\nms c 1 q\r\n1\r\n",
                b"".join(b"set s%d 0 0 1\r\n1\r\n" % i for i in range(25))]:
        for cmd in [b"get " + L, b"gets a " + L, b"gat 1 " + L, b"gats 1 a " + L, b"bget " + L, b"mg " + L + b" v",
                    b"set " + L + b" 0 0 1\r\nx", b"touch " + L + b" 1", b"delete " + L, b"incr " + L + b" 1"]:
            out.append(pre + cmd + b"\r\nget a\r\n")
    return out


def admin():
    out = []
    for line in ["stats sizes_enable", "stats sizes_disable", "stats sizes", "stats detail on", "stats detail off",
                 "stats detail dump", "stats cachedump 1 0", "stats reset", "stats settings", "stats conns",
                 "stats items", "stats slabs", "stats extstore", "stats lru_crawler", "stats proxy", "stats  settings",
                 "stats settings x", "stats items x", "watch", "watch fetchers", "lru_crawler metadump all",
                 "lru_crawler metadump 1", "lru_crawler metadump hash", "lru_crawler mgdump all",
                 "lru_crawler crawl all", "lru_crawler crawl 1", "lru_crawler sleep 100", "lru_crawler tocrawl 10",
                 "lru_crawler disable", "slabs reassign 1 2", "slabs automove 0", "lru mode flat",
                 "lru temp_ttl 10", "lru flat", "extstore", "cache_memlimit 64", "shutdown", "shutdown graceful"]:
        out.append((b(line + "\r\n"), {"timeout": 2.5}))
        out.append((b(line + "\r\nmn\r\n"), {"timeout": 2.5}))
    return out


FAMILIES.update(halfclose=halfclose, dropquirk=dropquirk, admin=admin)


def quiet():
    out = []
    pre = SEED + b"set st 0 0 2\r\nst\r\nmd st I T30\r\n"
    for key in ["k", "nope", "st", "n"]:
        for fl in ["", "v", "N30", "N30 v", "MA", "MP", "MR", "ME", "MS", "I", "I T30", "C1", "C99999", "N0 J5",
                   "N0 J5 v", "MD", "MI", "T0", "k O1", "c", "v c k O2 t s f", "x", "Tx", "F5", "D5 MD"]:
            for cmd in ["mg", "md", "ma"]:
                out.append(pre + b(f"{cmd} {key} {fl} q".replace("  ", " ") + "\r\nmn\r\n"))
            out.append(pre + b(f"ms {key} 2 {fl} q".replace("  ", " ") + "\r\nzz\r\nmn\r\n"))
    return out


FAMILIES.update(quiet=quiet)
