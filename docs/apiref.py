#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Build libupcie's API reference with Doxygen (meson: -Ddocs=true).

    apiref.py DOXYGEN DOXYFILE_IN MAINPAGE OUTDIR VERSION STRIP_DIR[:STRIP_DIR...] HEADER...

Fills docs/Doxyfile.in, runs Doxygen on the installed headers (and
MAINPAGE, docs/api.md, as the HTML's first page) and leaves OUTDIR/html
(the HTML reference) and OUTDIR/man3 (section 3 man pages).

Doxygen writes one man page per header and per struct. With MAN_LINKS it
adds one page per documented name (".so man3/<page>"): the functions,
typedefs, enums, macros, but also every struct field ("size.3",
"reserved.3") and anonymous enum ("@0.3"), names a package must not put in
man3. Kept here: the struct pages, the header pages under names of the
library's own (<upcie/upcie.h> is libupcie(3), <upcie/nvme.h> is
upcie_nvme.h(3)) and the link pages of upcie_* / UPCIE_* names, pointed at
the renamed pages. So "man upcie_nvme_read" shows <upcie/nvme.h>'s page,
which documents it.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

PUBLIC = re.compile(r"^(upcie|UPCIE)_\w+\.3$")


def text(node):
    return "".join(node.itertext()).strip() if node is not None else ""


def documented(node):
    return bool(text(node.find("briefdescription")) or text(node.find("detaileddescription")))


def entries(xmldir):
    """{name: (kind, header, documented)} for what the headers declare."""
    out = {}
    index = ET.parse(os.path.join(xmldir, "index.xml")).getroot()
    for comp in index.findall("compound"):
        kind = comp.get("kind")
        if kind not in ("file", "struct", "union"):
            continue
        root = ET.parse(os.path.join(xmldir, comp.get("refid") + ".xml")).getroot()
        cdef = root.find("compounddef")
        name = text(cdef.find("compoundname"))
        if kind in ("struct", "union"):
            loc = cdef.find("location")
            hdr = os.path.basename(loc.get("file")) if loc is not None else "?"
            out[name] = (kind, hdr, documented(cdef))
            continue
        hdr = os.path.basename(name)
        for m in cdef.iter("memberdef"):
            mk = m.get("kind")
            if mk not in ("function", "typedef", "enum", "variable"):
                continue
            mname = text(m.find("name"))
            if mk == "enum" and mname.startswith("@"):
                mname = f"(unnamed {mname}) in {hdr}"  # its comment still counts
            out[mname] = (mk, hdr, documented(m))
    return out


def doxyfile(template, values):
    text = open(template).read()
    for key, val in values.items():
        text = text.replace(f"@{key}@", val)
    left = re.findall(r"@[A-Z]+@", text)
    if left:
        raise SystemExit(f"apiref: {template}: no value for {' '.join(sorted(set(left)))}")
    return text


def run_doxygen(doxygen, template, outdir, version, strip, headers, html, man, xml,
                mainpage=""):
    """Doxygen on headers into outdir (html/, man/man3/, xml/); returns its warnings."""
    warnlog = os.path.join(outdir, "doxygen-warnings.log")
    conf = doxyfile(template, {
        "VERSION": version,
        "OUTPUT": outdir,
        "INPUT": " ".join(f'"{h}"' for h in headers + ([mainpage] if mainpage else [])),
        "MAINPAGE": f'"{mainpage}"' if mainpage else "",
        "STRIP": " ".join(f'"{d}"' for d in strip),
        "WARNLOG": warnlog,
        "HTML": "YES" if html else "NO",
        "MAN": "YES" if man else "NO",
        "XML": "YES" if xml else "NO",
    })
    p = subprocess.run([doxygen, "-"], input=conf, text=True, capture_output=True)
    if p.returncode:
        raise SystemExit(f"apiref: doxygen failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return open(warnlog).read() if os.path.exists(warnlog) else ""


def escape_text_lines(text):
    """Doxygen copies comment text into the page as it is: a line that starts
    with ' (it writes quotes so) would be read as a request by groff."""
    return re.sub(r"^'", r"\\&'", text, flags=re.M)


def header_page(name):
    """Man page name of a header's page: nvme.h.3 -> upcie_nvme.h.3."""
    return "libupcie.3" if name == "upcie.h.3" else "upcie_" + name


def man_pages(src, dst, headers):
    """The pages of src (Doxygen's man3) that belong in man3, into dst."""
    hdr_pages = {os.path.basename(h) + ".3" for h in headers}
    os.makedirs(dst)
    kept = 0
    for name in sorted(os.listdir(src)):
        text = open(os.path.join(src, name), encoding="utf-8").read()
        link = re.match(r"\.so man3/(\S+)\s*$", text)
        if link:
            target = link.group(1)
            if not PUBLIC.match(name):
                continue
            if target in hdr_pages:
                target = header_page(target)
            text = f".so man3/{target}\n"
        elif name in hdr_pages:
            name = header_page(name)
            text = escape_text_lines(text)
        elif not PUBLIC.match(name):
            continue  # the directory page, pages of unnamed types
        else:
            text = escape_text_lines(text)
        with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
            f.write(text)
        kept += 1
    # Every link must land on a page that is kept.
    for name in os.listdir(dst):
        link = re.match(r"\.so man3/(\S+)", open(os.path.join(dst, name)).read())
        if link and not os.path.exists(os.path.join(dst, link.group(1))):
            raise SystemExit(f"apiref: man page {name} points at {link.group(1)}, not kept")
    return kept


def main(argv):
    if len(argv) < 7:
        sys.stderr.write(__doc__)
        return 2
    doxygen, template, mainpage, outdir, version, strip = argv[:6]
    headers = [os.path.abspath(h) for h in argv[6:]]
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir) as tmp:
        warnings = run_doxygen(doxygen, template, tmp, version, strip.split(os.pathsep),
                               headers, html=True, man=True, xml=True,
                               mainpage=os.path.abspath(mainpage))
        if warnings.strip():
            sys.stderr.write(warnings)
        for d in ("html", "man3"):
            shutil.rmtree(os.path.join(outdir, d), ignore_errors=True)
        shutil.move(os.path.join(tmp, "html"), os.path.join(outdir, "html"))
        man3 = os.path.join(outdir, "man3")
        man_pages(os.path.join(tmp, "man", "man3"), man3, headers)
        # "man NAME" must work for every function, struct, enum and typedef.
        missing = [name for name in entries(os.path.join(tmp, "xml"))
                   if not name.startswith("(")
                   and not os.path.exists(os.path.join(man3, name + ".3"))]
        if missing:
            raise SystemExit("apiref: no man page for " + " ".join(sorted(missing)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
