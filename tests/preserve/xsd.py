"""Validates capsule's XML against the standard XML schemas, with libxml2 (lxml), offline.

    python3 xsd.py datacite XSD_DIR FILE...   DataCite kernel-4 resources (datacite.xml)
    python3 xsd.py oai XSD_DIR oai.xml        an OAI-PMH static repository

XSD_DIR is what tests/preserve/fetch-xsds.sh writes. The schemas' imports of each other
over the network are answered from XSD_DIR; any other network fetch is an error.

A static repository is served to harvesters by a static repository gateway, which
answers each OAI-PMH request with a part of the file inside an OAI-PMH response. No
registry ships static-repository.xsd, so each part is checked the way a harvester
receives it: wrapped as the gateway wraps it (an `OAI-PMH` element with responseDate and
request) and validated against OAI-PMH.xsd. The copy of OAI-PMH.xsd that pyoai ships
lets the content of `metadata` through unchecked (processContents="skip"), so each
record's metadata is validated on its own as well: `oai_dc:dc` against oai_dc.xsd, and
the kernel-4 `resource` inside each oai_datacite envelope against DataCite's schema. No
registry ships the oai_datacite envelope's schema (oai-1.1): its elements are checked
here by name.

Prints one line per checked part and exits 1 with every schema error when one fails.
"""
import os
import sys

from lxml import etree

OAI = "http://www.openarchives.org/OAI/2.0/"
SR = "http://www.openarchives.org/OAI/2.0/static-repository"
ODC = "http://schema.datacite.org/oai/oai-1.1/"
K4 = "http://datacite.org/schema/kernel-4"

mode, xsd_dir, files = sys.argv[1], sys.argv[2], sys.argv[3:]

LOCAL = {
    "http://dublincore.org/schemas/xmls/simpledc20021212.xsd": "simpledc20021212.xsd",
    "http://www.w3.org/2001/03/xml.xsd": "datacite/include/xml.xsd",
    "http://www.w3.org/2001/xml.xsd": "datacite/include/xml.xsd",
}


class Offline(etree.Resolver):
    def resolve(self, url, pubid, context):
        if url in LOCAL:
            return self.resolve_filename(os.path.join(xsd_dir, LOCAL[url]), context)
        if url.startswith(("http:", "https:")):
            raise OSError("the schemas asked for %s, which is not in %s" % (url, xsd_dir))
        return None


def schema(imports):
    """One schema importing every namespace in `imports` (namespace -> file)."""
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(Offline())
    driver = '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">%s</xs:schema>' % "".join(
        '<xs:import namespace="%s" schemaLocation="%s"/>'
        % (ns, "file://" + os.path.abspath(os.path.join(xsd_dir, f)))
        for ns, f in imports.items()
    )
    return etree.XMLSchema(etree.fromstring(driver.encode(), parser, base_url=xsd_dir + "/"))


failed = []


def check(xsd, doc, what):
    if xsd.validate(doc):
        print("valid: %s" % what)
    else:
        for e in xsd.error_log:
            failed.append("%s: line %s: %s" % (what, e.line, e.message))


if mode == "datacite":
    xsd = schema({K4: "datacite/metadata.xsd"})
    for f in files:
        check(xsd, etree.parse(f), f)
elif mode == "oai":
    xsd = schema(
        {
            OAI: "OAI-PMH.xsd",
            "http://www.openarchives.org/OAI/2.0/oai_dc/": "oai_dc.xsd",
            K4: "datacite/metadata.xsd",
        }
    )
    root = etree.parse(files[0]).getroot()
    if root.tag != "{%s}Repository" % SR:
        sys.exit("the root element is %s, not a static repository's Repository" % root.tag)
    parts = [c for c in root if isinstance(c.tag, str)]
    names = [etree.QName(c).localname for c in parts]
    if names[:2] != ["Identify", "ListMetadataFormats"] or any(n != "ListRecords" for n in names[2:]):
        sys.exit("a static repository holds Identify, ListMetadataFormats, ListRecords...: %s" % names)
    base_url = parts[0].find("{%s}baseURL" % OAI).text

    def gateway(part, verb, prefix=None):
        """The OAI-PMH response a gateway answers `verb` with, from `part`."""
        response = etree.Element("{%s}OAI-PMH" % OAI, nsmap={None: OAI})
        etree.SubElement(response, "{%s}responseDate" % OAI).text = "2002-02-08T12:00:01Z"
        request = etree.SubElement(response, "{%s}request" % OAI, verb=verb)
        if prefix:
            request.set("metadataPrefix", prefix)
        request.text = base_url
        body = etree.SubElement(response, "{%s}%s" % (OAI, verb))
        for child in part:
            body.append(etree.fromstring(etree.tostring(child)))
        return etree.ElementTree(response)

    check(xsd, gateway(parts[0], "Identify"), "Identify")
    check(xsd, gateway(parts[1], "ListMetadataFormats"), "ListMetadataFormats")
    for part in parts[2:]:
        prefix = part.get("metadataPrefix")
        if not prefix:
            failed.append("a ListRecords has no metadataPrefix")
            continue
        check(xsd, gateway(part, "ListRecords", prefix), "ListRecords metadataPrefix=%s" % prefix)
        for n, metadata in enumerate(part.iter("{%s}metadata" % OAI)):
            what = "%s record %d metadata" % (prefix, n + 1)
            body = [c for c in metadata if isinstance(c.tag, str)]
            if len(body) != 1:
                failed.append("%s: %d elements, not one" % (what, len(body)))
                continue
            content = body[0]
            if prefix == "oai_datacite":
                kids = [etree.QName(c).localname for c in content if isinstance(c.tag, str)]
                if content.tag != "{%s}oai_datacite" % ODC or kids[0] != "schemaVersion" or kids[-1] != "payload":
                    failed.append("%s: not an oai_datacite envelope: %s %s" % (what, content.tag, kids))
                    continue
                resources = content.find("{%s}payload" % ODC).findall("{%s}resource" % K4)
                if len(resources) != 1:
                    failed.append("%s: the payload holds %d kernel-4 resources" % (what, len(resources)))
                    continue
                content = resources[0]
            check(xsd, etree.ElementTree(etree.fromstring(etree.tostring(content))), what)
else:
    sys.exit("unknown mode %s" % mode)

if failed:
    print("\n".join(failed))
    sys.exit(1)
