"""The public surface is exactly what __all__ says."""

import types

import plait


def test_all_names_exist_and_are_unique():
    assert len(plait.__all__) == len(set(plait.__all__))
    for name in plait.__all__:
        assert hasattr(plait, name), name


def test_every_public_attribute_is_listed():
    public = {
        name for name, value in vars(plait).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(plait.__all__) == set()


def test_errors_share_one_root():
    for name in plait.__all__:
        obj = getattr(plait, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, plait.PlaitError), name


def test_the_run_viewer_is_public():
    import plait.viewer

    assert plait.write_view is plait.viewer.write_view
    assert "write_view" in plait.__all__
