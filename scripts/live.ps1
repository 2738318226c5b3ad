# transflower-live for Windows PowerShell (VSeeFace / Warudo users): set up once, then dance.
#
#     powershell -ExecutionPolicy Bypass -File scripts\live.ps1 --preview
#     powershell -ExecutionPolicy Bypass -File scripts\live.ps1 --device "Stereo Mix"
#
# The first run creates .venv and installs the runtime (no torch; needs the internet, about a minute).
# Later runs start at once and work offline: the install is redone only when pyproject.toml or the
# Python version changes (a stamp in .venv holds their hash). $env:TRANSFLOWER_REINSTALL = "1" forces it.
# Arguments go to `transflower live`. PortAudio comes inside the sounddevice wheel on Windows.
#
# UNTESTED: written carefully on Linux without a Windows machine to run it; the bash twin
# (scripts/live.sh) is the tested one. Needs Python 3.10+ from python.org (the `py` launcher) or $env:PYTHON.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")

function Find-Python {
    if ($env:PYTHON) { return @($env:PYTHON) }
    if (Get-Command py -ErrorAction SilentlyContinue) { return @("py", "-3") }
    if (Get-Command python -ErrorAction SilentlyContinue) { return @("python") }
    throw "Python 3.10+ not found: install it from https://www.python.org/downloads/ (tick 'Add python.exe to PATH'), or set `$env:PYTHON"
}

$Extra = "cpu"
$VenvPython = Join-Path ".venv" "Scripts\python.exe"
$Transflower = Join-Path ".venv" "Scripts\transflower.exe"
$Stamp = Join-Path ".venv" ".transflower-installed"

if (-not (Test-Path $VenvPython)) {
    $py = @(Find-Python)  # @(): PowerShell unrolls a one-element array returned by a function into a string
    $rest = @()
    if ($py.Length -gt 1) { $rest = $py[1..($py.Length - 1)] }
    & $py[0] @rest -m venv .venv
    if ($LASTEXITCODE -ne 0) { throw "could not create .venv with $($py -join ' ')" }
}

# what the install depends on: the dependency list, the extra, and the venv's Python
$hash = (Get-FileHash -Algorithm SHA256 pyproject.toml).Hash.ToLower()
$pyVersion = (& $VenvPython -c "import sys; print(sys.version.split()[0])").Trim()
$want = "$hash $Extra $pyVersion"
$have = ""
if (Test-Path $Stamp) { $have = (Get-Content -Raw $Stamp).Trim() }

if ($env:TRANSFLOWER_REINSTALL -eq "1" -or $have -ne $want -or -not (Test-Path $Transflower)) {
    Write-Host "installing transflower-live into .venv (once; later runs start at once) ..."
    if (Test-Path $Stamp) { Remove-Item $Stamp }
    & $VenvPython -m pip install -q --upgrade pip
    if ($LASTEXITCODE -ne 0) { throw "pip upgrade failed (is the internet reachable?)" }
    & $VenvPython -m pip install -q -e ".[$Extra]"
    if ($LASTEXITCODE -ne 0) { throw "installing transflower-live failed; see the pip messages above" }
    Set-Content -Path $Stamp -Value $want -NoNewline
}

& $Transflower live @args
exit $LASTEXITCODE
