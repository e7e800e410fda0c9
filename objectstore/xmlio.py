"""Hardened XML parsing and S3-namespaced builders.

Every XML body a client sends is parsed here and nowhere else: no DTD, no
entities, no network, and a size cap checked before lxml sees a byte.
"""

from lxml import etree

from objectstore.errors import MalformedXML

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    dtd_validation=False,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def parse(body, max_length):
    """Parse a client's XML document; anything odd is ``MalformedXML``."""
    if len(body) > max_length:
        raise MalformedXML("The XML you provided was larger than the maximum allowed size.")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        # A DTD has no business in an S3 request; refusing it outright rules
        # out entity expansion and external references whatever lxml does.
        raise MalformedXML()
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as e:
        raise MalformedXML() from e
    if root is None:
        raise MalformedXML()
    return root


def local(element):
    """The tag of *element* without its namespace (clients differ in sending one)."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def children(element, name):
    """Child elements named *name*, namespace or not."""
    return [c for c in element if local(c) == name]


def child_text(element, name, default=None):
    for c in element:
        if local(c) == name:
            return c.text or ""
    return default


def element(tag, *content, ns=S3_NS):
    """Build ``<tag>`` in the S3 namespace holding text and/or sub-elements.

    ``content`` items are elements, strings (text), or None (skipped), so
    builders read like the XML they make.
    """
    el = etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns}) if ns else etree.Element(tag)
    _fill(el, content, ns)
    return el


def sub(parent, tag, *content):
    ns = etree.QName(parent).namespace
    el = etree.SubElement(parent, f"{{{ns}}}{tag}" if ns else tag)
    _fill(el, content, ns)
    return el


def _fill(el, content, ns):
    for item in content:
        if item is None:
            continue
        if isinstance(item, etree._Element):
            el.append(item)
        else:
            el.text = (el.text or "") + str(item)


def to_bytes(root):
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
