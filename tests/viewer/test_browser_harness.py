"""The browser harness itself: it loads a page, and it sees JS errors (or the viewer tests could not)."""

from browser_harness import open_page


def test_a_page_loads_and_its_dom_is_readable(browser, tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<!doctype html><p id=x>hello</p><script>document.getElementById('x').dataset.ok='1'</script>")
    loaded = open_page(browser, page)
    assert browser.find_element("id", "x").text == "hello"
    assert browser.find_element("id", "x").get_attribute("data-ok") == "1"
    assert loaded.errors() == []


def test_js_errors_are_collected(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><script>undefinedFunction()</script>")
    loaded = open_page(browser, page)
    assert any("undefinedFunction" in e for e in loaded.errors())
