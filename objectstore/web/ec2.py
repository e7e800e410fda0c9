"""The EC2 Query API subset that registers and describes images, at /services/Cloud.

euca2ools and boto 2 send ``Action=...`` with SigV2 query signatures, boto3
a form-encoded POST signed with SigV4 for the ``ec2`` service; either way
the parameters are the query's and the form body's together. Answers are
EC2's XML; errors are rendered by web/errors.py in EC2's
``Response/Errors/Error`` form. The registry behind is /_images's.
"""

from urllib.parse import parse_qsl

from objectstore import xmlio
from objectstore.errors import ImageNotFound, InvalidAction, InvalidParameterValue, MissingParameter
from objectstore.registry import selection
from objectstore.registry.records import visible_to
from objectstore.web.access import require_user
from objectstore.web.body import BufferedBody
from objectstore.web.formats import iso8601
from objectstore.web.received import Received
from objectstore.web.resource import S3Resource, client_gone, operation

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
PATHS = (b"/services/Cloud", b"/services/Eucalyptus")
# A form body of parameters, never more.
FORM_LIMIT = 256 * 1024


def is_ec2_path(path):
    return path.rstrip(b"/") in PATHS


class Ec2Resource(S3Resource):
    resource_type = "EC2"

    def receive_query(self, request, length):
        return Received.of_document(BufferedBody(FORM_LIMIT, too_large=_form_too_large))

    @operation("GET")
    async def query(self, request):
        parameters = _parameters(request)
        request.caller = self.app.ec2_authenticator.authenticate(request, parameters, _body(request))
        action = parameters.get("Action")
        if not action:
            raise MissingParameter("The request must contain the parameter Action.")
        handler = ACTIONS.get(action)
        if handler is None:
            raise InvalidAction(f"The action {action} is not valid for this web service.")
        root = await handler(self.app.registrar, request, Params(parameters))
        _send(request, root)

    # boto3 POSTs its form; euca2ools may do either.
    receive_post_query = receive_query

    @operation("POST")
    async def post_query(self, request):
        await self.query(request)


class Params:
    """The request's parameters, with EC2's numbered lists (``ImageId.1``, ``Filter.1.Value.2``)."""

    def __init__(self, values):
        self.values = values

    def get(self, name, default=None):
        return self.values.get(name, default)

    def required(self, name):
        value = self.values.get(name)
        if not value:
            raise MissingParameter(f"The request must contain the parameter {name}")
        return value

    def numbered(self, prefix):
        """Values of ``PREFIX.1``, ``PREFIX.2``, ... in number order."""
        found = []
        for name, value in self.values.items():
            head, dot, number = name.rpartition(".")
            if head == prefix and dot and number.isdigit():
                found.append((int(number), value))
        return [value for _, value in sorted(found)]

    def filters(self):
        """[(name, [values])] of ``Filter.N.Name`` / ``Filter.N.Value.M``."""
        names = {}
        for name, value in self.values.items():
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "Filter" and parts[1].isdigit() and parts[2] == "Name":
                names[int(parts[1])] = value
        return [(names[n], self.numbered(f"Filter.{n}.Value")) for n in sorted(names)]


def _form_too_large():
    return InvalidParameterValue("The request is too large.")


def _body(request):
    return request.received.document_bytes()


def _parameters(request):
    values = {name.decode("latin-1"): vs[-1].decode("utf-8", "replace") for name, vs in request.args.items()}
    body = _body(request)
    if body:
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise InvalidParameterValue("The request body is not a form of parameters.") from None
        values.update(form)
    return values


def _response(action, request):
    root = xmlio.element(f"{action}Response", ns=EC2_NS)
    xmlio.sub(root, "requestId", request.request_id)
    return root


def _send(request, root):
    if client_gone(request):
        return
    body = xmlio.to_bytes(root)
    request.setHeader(b"Content-Type", b"text/xml;charset=UTF-8")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)
    request.finish()


def _true(value):
    return "true" if value else "false"


# -- actions -------------------------------------------------------------


async def register_image(registrar, request, params):
    user = require_user(request)
    image = await registrar.register(
        user,
        params.required("ImageLocation"),
        name=params.get("Name"),
        description=params.get("Description"),
        architecture=params.get("Architecture"),
        kernel_id=params.get("KernelId"),
        ramdisk_id=params.get("RamdiskId"),
    )
    root = _response("RegisterImage", request)
    xmlio.sub(root, "imageId", image.id)
    return root


async def describe_images(registrar, request, params):
    images = selection.select(
        registrar.visible(request.caller.user),
        request.caller.user,
        image_ids=params.numbered("ImageId"),
        owners=params.numbered("Owner"),
        executable_by=params.numbered("ExecutableBy"),
        filters=params.filters(),
    )
    # Ids asked for by name must exist (and be visible), as in EC2.
    missing = sorted(set(params.numbered("ImageId")) - {image.id for image in images})
    for image_id in missing:
        registrar.get(image_id)  # MalformedImageId for a bad one
    if missing:
        raise ImageNotFound(f"The image id '[{', '.join(missing)}]' does not exist")
    root = _response("DescribeImages", request)
    listed = xmlio.sub(root, "imagesSet")
    for image in images:
        _describe(xmlio.sub(listed, "item"), image)
    return root


def _describe(item, image):
    xmlio.sub(item, "imageId", image.id)
    xmlio.sub(item, "imageLocation", image.location)
    xmlio.sub(item, "imageState", image.state)
    xmlio.sub(item, "imageOwnerId", image.owner)
    xmlio.sub(item, "creationDate", iso8601(image.created))
    xmlio.sub(item, "isPublic", _true(image.is_public))
    xmlio.sub(item, "architecture", image.architecture)
    xmlio.sub(item, "imageType", image.type)
    if image.kernel_id:
        xmlio.sub(item, "kernelId", image.kernel_id)
    if image.ramdisk_id:
        xmlio.sub(item, "ramdiskId", image.ramdisk_id)
    xmlio.sub(item, "name", image.name)
    if image.description:
        xmlio.sub(item, "description", image.description)
    if image.reason:
        reason = xmlio.sub(item, "stateReason")
        xmlio.sub(reason, "code", "Client.InvalidImage")
        xmlio.sub(reason, "message", image.reason)
    xmlio.sub(item, "rootDeviceType", "instance-store")
    mappings = xmlio.sub(item, "blockDeviceMapping")
    for virtual, device in image.block_devices:
        mapping = xmlio.sub(mappings, "item")
        xmlio.sub(mapping, "deviceName", device)
        xmlio.sub(mapping, "virtualName", virtual)
    xmlio.sub(item, "virtualizationType", "paravirtual")
    xmlio.sub(item, "hypervisor", "xen")


async def deregister_image(registrar, request, params):
    await registrar.deregister(require_user(request), params.required("ImageId"))
    return _done("DeregisterImage", request)


def _done(action, request):
    root = _response(action, request)
    xmlio.sub(root, "return", "true")
    return root


async def modify_image_attribute(registrar, request, params):
    user = require_user(request)
    image_id = params.required("ImageId")
    changes = {}
    added = params.numbered("LaunchPermission.Add") or _groups(params, "LaunchPermission.Add")
    removed = params.numbered("LaunchPermission.Remove") or _groups(params, "LaunchPermission.Remove")
    attribute = params.get("Attribute")
    if attribute == "launchPermission" and params.get("OperationType") in ("add", "remove"):
        groups = params.numbered("UserGroup")
        (added if params.get("OperationType") == "add" else removed).extend(groups)
    for group in added + removed:
        if group != "all":
            raise InvalidParameterValue(f"Launch permissions can only be given to the group 'all', not {group!r}.")
    if added:
        changes["is_public"] = True
    if removed:
        changes["is_public"] = False
    description = params.get("Description.Value", params.get("Description"))
    if attribute == "description" and description is None:
        description = params.get("Value")
    if description is not None:
        changes["description"] = description
    if not changes:
        raise MissingParameter("The request must change the launch permission or the description.")
    await registrar.change(user, image_id, **changes)
    return _done("ModifyImageAttribute", request)


def _groups(params, prefix):
    """Group names of ``PREFIX.N.Group`` (boto3's form of launch permissions)."""
    found = []
    for name, value in params.values.items():
        parts = name.split(".")
        if len(parts) == 4 and ".".join(parts[:2]) == prefix and parts[2].isdigit() and parts[3] == "Group":
            found.append((int(parts[2]), value))
    return [value for _, value in sorted(found)]


async def describe_image_attribute(registrar, request, params):
    image = registrar.get(params.required("ImageId"))
    if not visible_to(image, request.caller.user):
        raise _not_found(image.id)
    attribute = params.required("Attribute")
    root = _response("DescribeImageAttribute", request)
    xmlio.sub(root, "imageId", image.id)
    if attribute == "launchPermission":
        permissions = xmlio.sub(root, "launchPermission")
        if image.is_public:
            xmlio.sub(xmlio.sub(permissions, "item"), "group", "all")
    elif attribute in ("description", "kernel", "ramdisk"):
        value = {"description": image.description, "kernel": image.kernel_id, "ramdisk": image.ramdisk_id}[attribute]
        holder = xmlio.sub(root, attribute)
        if value:
            xmlio.sub(holder, "value", value)
    else:
        raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid.")
    return root


async def reset_image_attribute(registrar, request, params):
    user = require_user(request)
    attribute = params.required("Attribute")
    if attribute != "launchPermission":
        raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid.")
    await registrar.change(user, params.required("ImageId"), is_public=False)
    return _done("ResetImageAttribute", request)


def _not_found(image_id):
    return ImageNotFound(f"The image id '[{image_id}]' does not exist")


ACTIONS = {
    "RegisterImage": register_image,
    "DescribeImages": describe_images,
    "DeregisterImage": deregister_image,
    "ModifyImageAttribute": modify_image_attribute,
    "DescribeImageAttribute": describe_image_attribute,
    "ResetImageAttribute": reset_image_attribute,
}
