"""objectstore-bundle's endpoints and keys: options first, then the variables euca2ools and boto read."""

import pytest

from objectstore.bundletool.settings import DEFAULT_URL, Keys, SettingsError, endpoints, file_setting, keys


def test_nothing_set_means_the_local_server_and_us_east_1():
    found = endpoints(environ={})
    assert (found.s3_url, found.ec2_url, found.region) == (DEFAULT_URL, DEFAULT_URL + "/services/Cloud", "us-east-1")


def test_objectstore_url_names_the_server_for_both_apis():
    found = endpoints(environ={"OBJECTSTORE_URL": "https://cloud.example:8443/"})
    assert found.s3_url == "https://cloud.example:8443"
    assert found.ec2_url == "https://cloud.example:8443/services/Cloud"


def test_euca2ools_variables_name_each_api_and_beat_the_server_variable():
    environ = {
        "OBJECTSTORE_URL": "http://server:3333",
        "S3_URL": "http://walrus:8773/services/Walrus",
        "EC2_URL": "http://clc:8773/services/Eucalyptus",
        "EC2_REGION": "eucalyptus",
    }
    found = endpoints(environ=environ)
    assert found.s3_url == "http://walrus:8773/services/Walrus"
    assert found.ec2_url == "http://clc:8773/services/Eucalyptus"
    assert found.region == "eucalyptus"


def test_options_beat_the_environment():
    environ = {"S3_URL": "http://a:1", "EC2_URL": "http://b:2", "AWS_REGION": "env-region"}
    found = endpoints(url="http://opt:9", region="opt-region", environ=environ)
    assert (found.s3_url, found.ec2_url, found.region) == ("http://opt:9", "http://opt:9/services/Cloud", "opt-region")
    found = endpoints(url="http://opt:9", ec2_url="http://ec2:7/x", environ=environ)
    assert (found.s3_url, found.ec2_url) == ("http://opt:9", "http://ec2:7/x")


def test_aws_endpoint_variables_are_read_after_euca2ools_ones():
    found = endpoints(environ={"AWS_ENDPOINT_URL_S3": "http://s3:1", "AWS_ENDPOINT_URL_EC2": "http://ec2:2"})
    assert (found.s3_url, found.ec2_url) == ("http://s3:1", "http://ec2:2")
    found = endpoints(environ={"AWS_ENDPOINT_URL": "http://all:3"})
    assert (found.s3_url, found.ec2_url) == ("http://all:3", "http://all:3/services/Cloud")


def test_with_an_s3_url_alone_ec2_is_looked_for_on_the_same_host():
    found = endpoints(environ={"S3_URL": "https://walrus.example:8773/services/Walrus"})
    assert found.ec2_url == "https://walrus.example:8773/services/Cloud"
    found = endpoints(s3_url="http://s3.example:9000", environ={})
    assert found.ec2_url == "http://s3.example:9000/services/Cloud"


@pytest.mark.parametrize("url", ["ftp://host", "host:3333", "http://", "http://h/?x=1", "http://h/#f"])
def test_urls_that_are_not_http_endpoints_are_refused(url):
    with pytest.raises(SettingsError, match="URL"):
        endpoints(url=url, environ={})


def test_keys_come_in_pairs_in_the_documented_order():
    environ = {
        "EC2_ACCESS_KEY": "euca1",
        "EC2_SECRET_KEY": "euca1-secret",
        "AWS_ACCESS_KEY_ID": "boto",  # no secret beside it: this pair is not taken
        "AWS_ACCESS_KEY": "euca3",
        "AWS_SECRET_KEY": "euca3-secret",
    }
    assert keys(environ=environ) == Keys("euca3", "euca3-secret")
    assert keys(environ={"EC2_ACCESS_KEY": "a", "EC2_SECRET_KEY": "s"}).secret_key == "s"
    assert keys("opt", "opt-secret", environ=environ).access_key == "opt"


def test_the_servers_admin_seed_is_not_taken_as_the_callers_keys():
    with pytest.raises(SettingsError, match="no access keys"):
        keys(environ={"OBJECTSTORE_ACCESS_KEY": "admin", "OBJECTSTORE_SECRET_KEY": "admin-secret"})


def test_missing_or_half_given_keys_are_refused_with_what_to_set():
    with pytest.raises(SettingsError, match="AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.*EC2_ACCESS_KEY"):
        keys(environ={})
    with pytest.raises(SettingsError, match="both --access-key and --secret-key"):
        keys("only-the-key", None, environ={})


def test_file_settings_name_where_a_bad_path_came_from(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    assert file_setting(None, "EC2_CERT", "your certificate", environ={"EC2_CERT": str(cert)}) == str(cert)
    assert file_setting(None, "EC2_CERT", "your certificate", environ={}) is None
    with pytest.raises(SettingsError, match=r"from \$EC2_CERT"):
        file_setting(None, "EC2_CERT", "your certificate", environ={"EC2_CERT": str(tmp_path / "none")})
