from atom.runtime.launch import LocalServices


def test_services_import_this_code_not_the_working_directorys(tmp_path, monkeypatch):
    # A directory holding another `atom` package (another checkout, say) must not change the
    # code a started service runs: the decoy fails on import, so a service that loaded it dies.
    decoy = tmp_path / "checkout"
    (decoy / "atom").mkdir(parents=True)
    (decoy / "atom" / "__init__.py").write_text("raise ImportError('the decoy atom package was imported')\n")
    monkeypatch.chdir(decoy)
    with LocalServices(str(tmp_path / "store"), ["judge"], log_dir=tmp_path / "logs") as group:
        group.wait_ready(60)
        assert group.services["judge"][0].proc.poll() is None
