#!/usr/bin/env python3
# Checks the relative links of README.md, docs/*.md and benchmarks/README.md: every target
# file exists and every #anchor names a heading (GitHub-style slugs). Run from the repository root.
import re, os, sys, unicodedata
def slug(h):
    h = h.strip().lower()
    h = re.sub(r'[^\w\- ]', '', h)   # GitHub: drop punctuation except - and _
    return h.replace(' ', '-')
def anchors(path):
    out=set(); inside=False
    for line in open(path):
        if line.startswith('```'): inside=not inside; continue
        if not inside and line.startswith('#'):
            out.add(slug(line.lstrip('#')))
    return out
bad=0
files=['README.md']+['docs/'+f for f in os.listdir('docs') if f.endswith('.md')]+['benchmarks/README.md']
for f in files:
    text=open(f).read()
    text=re.sub(r'```.*?```','',text,flags=re.S)
    for m in re.finditer(r'\]\(([^)\s]+)\)', text):
        link=m.group(1)
        if re.match(r'[a-z]+:', link): continue
        path, _, frag = link.partition('#')
        target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(target):
            print(f'{f}: missing {link}'); bad+=1; continue
        if frag and target.endswith('.md') and frag not in anchors(target):
            print(f'{f}: no anchor {link}'); bad+=1
print('bad', bad); sys.exit(1 if bad else 0)
