#!/usr/bin/env python3
"""Turn a bench archive into a Hugo site with one page per deposit, for comparison.

    python3 bench/hugo_pages.py ARCHIVE_DIR HUGO_DIR

Each page carries the deposit's title, people, keywords and the deposit as a data
block, and the layout renders the same kind of field list capsule renders, so Hugo
does comparable work (front matter, one template, taxonomies for keywords and people).
"""
import hashlib
import json, os, sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
(dst / "content" / "records").mkdir(parents=True, exist_ok=True)
(dst / "layouts" / "_default").mkdir(parents=True, exist_ok=True)
(dst / "hugo.toml").write_text('baseURL = "https://example.org/"\ntitle = "Bench"\n'
    'disableKinds = ["RSS"]\n[taxonomies]\nkeyword = "keywords"\nperson = "people"\n')
(dst / "layouts" / "_default" / "baseof.html").write_text(
    '<!DOCTYPE html><html><head><title>{{ .Title }}</title></head><body>{{ block "main" . }}{{ end }}</body></html>')
(dst / "layouts" / "_default" / "single.html").write_text(
    '{{ define "main" }}<h1>{{ .Title }}</h1><ul>{{ range .Params.people }}<li>{{ . }}</li>{{ end }}</ul>'
    '{{ range $k, $v := .Params.deposit }}<h2>{{ $k }}</h2><pre>{{ jsonify $v }}</pre>{{ end }}{{ end }}')
(dst / "layouts" / "_default" / "list.html").write_text(
    '{{ define "main" }}<h1>{{ .Title }}</h1><ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}</ul>{{ end }}')
for d in sorted(p.name for shard in (src / "deposits").iterdir() if shard.is_dir() for p in shard.iterdir()):
    dep = json.loads((src / "deposits" / hashlib.sha256(d.encode()).hexdigest()[:2] / d / "deposit.json").read_text())
    info = dep.get("basic_info", {})
    front = {
        "title": dep.get("general_title", d),
        "keywords": info.get("keywords", []),
        "people": [p.get("name") for p in info.get("people_info", [])],
        "deposit": {k: v for k, v in dep.items() if not k.startswith(("_", "$"))},
    }
    (dst / "content" / "records" / f"{d}.md").write_text(json.dumps(front, ensure_ascii=False) + "\n")
