"""Hand-written manifests in the shapes each known producer writes (docs/bundle-format.md §9).

Values are stand-ins (the hex is well-formed, the keys wrap nothing); the
signature placeholder is replaced by a real signature of the raw signed text,
so each shape also exercises the raw-substring rule of §5.
"""

from images.crypto import sign

IMAGE_DIGEST = "2af76ec0d6d1b2d37e48f3c5e5a86a25cd52eab5"
PART_DIGESTS = ("9f1b64e16e1d2c3b4a5968778695a4b3c2d1e0f1", "da39a3ee5e6b4b0d3255bfef95601890afd80709")
EC2_KEY = "bb55" * 128
EC2_IV = "ac01" * 128
USER_KEY = "35bb" * 128
USER_IV = "77aa" * 128
SIGNATURE = b"@SIGNATURE@"


def signed(template, private_key):
    """The template with its placeholder replaced by a signature of its raw signed text."""
    data = template.encode("ascii")
    signed_text = _between(data, b"<machine_configuration>", b"</machine_configuration>") + _between(
        data, b"<image>", b"</image>"
    )
    return data.replace(SIGNATURE, sign(private_key, signed_text).encode("ascii"))


def _between(data, start, end):
    if start not in data:
        return b""
    first = data.index(start)
    return data[first : data.index(end, first) + len(end)]


# euca2ools 1.x/2.x: double-quoted declaration, no newline, all on one line;
# bundler "euca-tools"; type always "machine", a kernel marked by kernel_id=true;
# product_codes in machine_configuration, ancestry after type.
EUCA2OOLS_1X_KERNEL = (
    '<?xml version="1.0" ?><manifest><version>2007-10-10</version><bundler><name>euca-tools</name>'
    "<version>1.3.2</version><release>1.3.2</release></bundler><machine_configuration>"
    "<architecture>x86_64</architecture><block_device_mapping><mapping><virtual>ami</virtual>"
    "<device>sda1</device></mapping><mapping><virtual>root</virtual><device>/dev/sda1</device></mapping>"
    "</block_device_mapping><product_codes><product_code>1234ABCD</product_code></product_codes>"
    "<kernel_id>true</kernel_id></machine_configuration><image><name>vmlinuz-2.6.28</name>"
    "<user>123456789012</user><type>machine</type><ancestry><ancestor_ami_id>emi-11111111</ancestor_ami_id>"
    f'</ancestry><digest algorithm="SHA1">{IMAGE_DIGEST}</digest><size>2686976</size>'
    f'<bundled_size>2690000</bundled_size><ec2_encrypted_key algorithm="AES-128-CBC">{EC2_KEY}'
    f'</ec2_encrypted_key><user_encrypted_key algorithm="AES-128-CBC">{USER_KEY}</user_encrypted_key>'
    f"<ec2_encrypted_iv>{EC2_IV}</ec2_encrypted_iv><user_encrypted_iv>{USER_IV}</user_encrypted_iv>"
    '<parts count="2"><part index="0"><filename>vmlinuz-2.6.28.part.00</filename>'
    f'<digest algorithm="SHA1">{PART_DIGESTS[0]}</digest></part><part index="1">'
    f'<filename>vmlinuz-2.6.28.part.01</filename><digest algorithm="SHA1">{PART_DIGESTS[1]}</digest></part>'
    "</parts></image><signature>@SIGNATURE@</signature></manifest>"
)

# euca2ools 3.0: 3.x declaration, empty <release/>, machine_configuration in the
# order arch, kernel_id, ramdisk_id, mappings; kernel_name after type, ancestry
# after parts; unpadded part names.
EUCA2OOLS_30_KERNEL = (
    "<?xml version='1.0' encoding='ASCII'?>\n<manifest><version>2007-10-10</version><bundler>"
    "<name>euca2ools</name><version>3.0.2</version><release/></bundler><machine_configuration>"
    "<architecture>x86_64</architecture><kernel_id>true</kernel_id></machine_configuration><image>"
    "<name>vmlinuz-3.2</name><user>123456789012</user><type>kernel</type><kernel_name>vmlinuz-3.2</kernel_name>"
    f'<digest algorithm="SHA1">{IMAGE_DIGEST}</digest><size>4933632</size><bundled_size>4940000</bundled_size>'
    f'<ec2_encrypted_key algorithm="AES-128-CBC">{EC2_KEY}</ec2_encrypted_key>'
    f'<user_encrypted_key algorithm="AES-128-CBC">{USER_KEY}</user_encrypted_key>'
    f"<ec2_encrypted_iv>{EC2_IV}</ec2_encrypted_iv><user_encrypted_iv>{USER_IV}</user_encrypted_iv>"
    '<parts count="2"><part index="0"><filename>vmlinuz-3.2.part.0</filename>'
    f'<digest algorithm="SHA1">{PART_DIGESTS[0]}</digest></part><part index="1">'
    f'<filename>vmlinuz-3.2.part.1</filename><digest algorithm="SHA1">{PART_DIGESTS[1]}</digest></part></parts>'
    "<ancestry><ancestor_ami_id>emi-22222222</ancestor_ami_id></ancestry></image>"
    "<signature>@SIGNATURE@</signature></manifest>"
)

# The example of docs/bundle-format.md §4.2 (euca2ools 3.1-3.4), hex filled in.
EUCA2OOLS_3X_MACHINE = (
    "<?xml version='1.0' encoding='ASCII'?>\n<manifest><version>2007-10-10</version><bundler>"
    "<name>euca2ools</name><version>3.4.1</version><release>0</release></bundler><machine_configuration>"
    "<architecture>x86_64</architecture><block_device_mapping><mapping><virtual>ami</virtual>"
    "<device>sda1</device></mapping><mapping><virtual>root</virtual><device>/dev/sda1</device></mapping>"
    "</block_device_mapping><kernel_id>eki-12345678</kernel_id><ramdisk_id>eri-87654321</ramdisk_id>"
    "</machine_configuration><image><name>myimage.img</name><user>123456789012</user><type>machine</type>"
    f'<digest algorithm="SHA1">{IMAGE_DIGEST}</digest><size>26214400</size><bundled_size>26218640</bundled_size>'
    f'<ec2_encrypted_key algorithm="AES-128-CBC">{EC2_KEY}</ec2_encrypted_key>'
    f'<user_encrypted_key algorithm="AES-128-CBC">{USER_KEY}</user_encrypted_key>'
    f"<ec2_encrypted_iv>{EC2_IV}</ec2_encrypted_iv><user_encrypted_iv>{USER_IV}</user_encrypted_iv>"
    '<parts count="2"><part index="0"><filename>myimage.img.part.00</filename>'
    f'<digest algorithm="SHA1">{PART_DIGESTS[0]}</digest></part><part index="1">'
    f'<filename>myimage.img.part.01</filename><digest algorithm="SHA1">{PART_DIGESTS[1]}</digest></part>'
    "</parts></image><signature>@SIGNATURE@</signature></manifest>"
)

# EC2 AMI tools 1.5: <?xml version='1.0'?>, indented, uppercase hex, parts
# written out of order, product_codes last in machine_configuration,
# kernel_name and ancestry after type, part names padded to N's digits.
AMI_TOOLS_MACHINE = f"""<?xml version='1.0'?>
<manifest>
  <version>2007-10-10</version>
  <bundler>
    <name>ec2-ami-tools</name>
    <version>1.5.7</version>
    <release>3</release>
  </bundler>
  <machine_configuration>
    <architecture> i386 </architecture>
    <block_device_mapping>
      <mapping>
        <virtual>ami</virtual>
        <device>sda1</device>
      </mapping>
    </block_device_mapping>
    <kernel_id>aki-a71cf9ce</kernel_id>
    <ramdisk_id>ari-a51cf9cc</ramdisk_id>
    <product_codes>
      <product_code>8ABC1234</product_code>
    </product_codes>
  </machine_configuration>
  <image>
    <name>my-ami</name>
    <user>123456789012</user>
    <type>machine</type>
    <ancestry>
      <ancestor_ami_id>ami-33333333</ancestor_ami_id>
    </ancestry>
    <digest algorithm='SHA1'>
      {IMAGE_DIGEST.upper()}
    </digest>
    <size>10485760</size>
    <bundled_size>10490000</bundled_size>
    <ec2_encrypted_key algorithm='AES-128-CBC'>{EC2_KEY.upper()}</ec2_encrypted_key>
    <user_encrypted_key algorithm='AES-128-CBC'>{USER_KEY}</user_encrypted_key>
    <ec2_encrypted_iv>{EC2_IV}</ec2_encrypted_iv>
    <user_encrypted_iv>{USER_IV}</user_encrypted_iv>
    <parts count='2'>
      <part index='1'>
        <filename>my-ami.part.1</filename>
        <digest algorithm='SHA1'>{PART_DIGESTS[1].upper()}</digest>
      </part>
      <part index='0'>
        <filename> my-ami.part.0 </filename>
        <digest algorithm='SHA1'>{PART_DIGESTS[0]}</digest>
      </part>
    </parts>
  </image>
  <signature>@SIGNATURE@</signature>
</manifest>
"""

# The older layouts the AMI tools still read: 2007-08-29 (no type, no kernel
# or ramdisk) and 3 (no machine_configuration at all).
VERSION_2007_08_29 = (
    "<?xml version='1.0'?><manifest><version>2007-08-29</version><bundler><name>ec2-ami-tools</name>"
    "<version>1.3</version><release>26357</release></bundler><machine_configuration>"
    "<architecture>x86_64</architecture></machine_configuration><image><name>old-ami</name>"
    f'<user>123456789012</user><digest algorithm="SHA1">{IMAGE_DIGEST}</digest><size>1048576</size>'
    f'<bundled_size>1050000</bundled_size><ec2_encrypted_key algorithm="AES-128-CBC">{EC2_KEY}'
    f'</ec2_encrypted_key><user_encrypted_key algorithm="AES-128-CBC">{USER_KEY}</user_encrypted_key>'
    f"<ec2_encrypted_iv>{EC2_IV}</ec2_encrypted_iv><user_encrypted_iv>{USER_IV}</user_encrypted_iv>"
    f'<parts count="1"><part index="0"><filename>old-ami.part.0</filename><digest algorithm="SHA1">'
    f"{PART_DIGESTS[0]}</digest></part></parts></image><signature>@SIGNATURE@</signature></manifest>"
)

VERSION_3 = (
    "<?xml version='1.0'?><manifest><version>3</version><bundler><name>ec2-ami-tools</name>"
    "<version>1.0</version><release>1</release></bundler><image><name>oldest-ami</name>"
    f'<user>123456789012</user><digest algorithm="SHA1">{IMAGE_DIGEST}</digest><size>1048576</size>'
    f'<bundled_size>1050000</bundled_size><ec2_encrypted_key algorithm="AES-128-CBC">{EC2_KEY}'
    f'</ec2_encrypted_key><user_encrypted_key algorithm="AES-128-CBC">{USER_KEY}</user_encrypted_key>'
    f"<ec2_encrypted_iv>{EC2_IV}</ec2_encrypted_iv><user_encrypted_iv>{USER_IV}</user_encrypted_iv>"
    f'<parts count="1"><part index="0"><filename>oldest-ami.part.0</filename><digest algorithm="SHA1">'
    f"{PART_DIGESTS[0]}</digest></part></parts></image><signature>@SIGNATURE@</signature></manifest>"
)
