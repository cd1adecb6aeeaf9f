#!/usr/bin/env python3
"""Generate a synthetic capsule archive for benchmarks.

    python3 bench/gen_archive.py OUT_DIR --deposits N [--seed S] [--schema PATH] [--jobs J] [--public]

Writes a plain directory (bench/make_git.sh turns it into a git repository):

    capsule.toml, access.toml
    schemas/analysis/1.0.0.json        copy of --schema
    deposits/<shard>/ana-000001/deposit.json   one physics analysis, ~5 KB, indent 2
                                       (shard: first 2 hex digits of sha256(id))
    ...

Every deposit is built from its own random generator, seeded from (seed, index), so the
output is byte-for-byte the same for a given seed whatever the number of worker
processes, and deposit k is the same whatever N is (a 10k archive is a prefix of a 100k one).

Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = REPO_ROOT / "schemas" / "analysis" / "1.0.0.json"
SCHEMA_REF = "analysis/1.0.0"

CAPSULE_TOML = '[archive]\nname = "Bench archive"\nbase_url = "https://analyses.example.org"\n'
ACCESS_TOML = (
    '[people]\nalice = "alice@example.org"\nbob = "bob@example.org"\n'
    '[groups]\ncms-members = ["alice", "bob"]\n'
)

# --- vocabulary --------------------------------------------------------------------------

FIRST_NAMES = [
    "Alice", "Bob", "Chiara", "Dmitri", "Elena", "Fatima", "Giulia", "Hiroshi", "Ines",
    "Jakub", "Katarzyna", "Luca", "Maria", "Nikolai", "Olga", "Pedro", "Qiang", "Rafael",
    "Sofia", "Tomasz", "Ursula", "Vincent", "Wei", "Xavier", "Yasmin", "Zoltan", "Anna",
    "Benedikt", "Clara", "David", "Emma", "Federico", "Hannah", "Ivan", "Julia", "Kevin",
    "Laura", "Matteo", "Nadia", "Oscar", "Priya", "Sebastian", "Tanja", "Aditya", "Mei",
]
LAST_NAMES = [
    "Rossi", "Müller", "Schmidt", "Novak", "Kowalski", "Petrov", "Tanaka", "García",
    "Martin", "Bernard", "Dubois", "Ferrari", "Esposito", "Bianchi", "Nakamura", "Kim",
    "Chen", "Wang", "Singh", "Sharma", "Ivanova", "Horvath", "Nielsen", "Johansson",
    "O'Brien", "Murphy", "Smith", "Jones", "Brown", "Wilson", "Costa", "Silva", "Santos",
    "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Lambert", "Moreau", "Kaya",
    "Yilmaz", "Papadopoulos", "Andersen", "Lindqvist", "Van der Berg", "De Luca",
]
ROLES = [
    "contact person", "analyst", "analyst", "analyst", "convener", "reviewer",
    "statistics committee", "software coordinator", "student",
]
INSTITUTES = ["cern.ch", "cern.ch", "cern.ch", "desy.de", "infn.it", "fnal.gov", "kit.edu",
              "lip.pt", "ethz.ch", "ic.ac.uk", "lbl.gov", "ihep.ac.cn", "in2p3.fr"]


# (topic keywords, title templates, observables, channels, final states)
TOPICS = [
    {
        "name": "Higgs",
        "group": "HIG",
        "keywords": ["Higgs boson", "H to gamma gamma", "H to ZZ to 4l", "H to bb", "ttH",
                     "VBF", "ggF", "couplings", "signal strength", "STXS", "Higgs width"],
        "titles": [
            "Measurement of Higgs boson production in the {fs} final state",
            "Measurement of the Higgs boson couplings using the {fs} channel",
            "Observation of Higgs boson decays to {fs}",
            "Simplified template cross sections for Higgs boson production in the {fs} channel",
        ],
        "observables": ["signal strength mu", "fiducial cross section", "Higgs boson mass",
                        "kappa_V", "kappa_F", "differential cross section in pT(H)"],
        "channels": ["H -> gamma gamma", "H -> ZZ* -> 4l", "H -> WW* -> e mu nu nu",
                     "H -> bb", "H -> tau tau", "H -> mu mu"],
        "final_states": ["diphoton", "four leptons", "dimuon", "two b jets", "di-tau",
                         "e mu + MET"],
    },
    {
        "name": "top",
        "group": "TOP",
        "keywords": ["top quark", "ttbar", "single top", "top mass", "b-tagging", "lepton+jets",
                     "dilepton", "tW", "top polarisation", "spin correlations", "ttZ"],
        "titles": [
            "Measurement of the top quark pair production cross section in the {fs} channel",
            "Measurement of the top quark mass using {fs} events",
            "Differential ttbar cross sections in the {fs} final state",
            "Search for flavour-changing neutral currents in top quark decays with {fs}",
        ],
        "observables": ["inclusive ttbar cross section", "top quark mass", "m(ttbar)",
                        "pT(top)", "charge asymmetry", "W helicity fractions"],
        "channels": ["ttbar -> lepton+jets", "ttbar -> dilepton", "ttbar -> all hadronic",
                     "single top t-channel", "tW"],
        "final_states": ["lepton + jets", "e mu + b jets", "six jets", "dilepton + MET",
                         "boosted top jets"],
    },
    {
        "name": "electroweak",
        "group": "SMP",
        "keywords": ["W boson", "Z boson", "Drell-Yan", "dimuon", "dielectron", "W mass",
                     "weak mixing angle", "diboson", "vector boson scattering", "WZ", "ZZ"],
        "titles": [
            "Measurement of the {fs} production cross section",
            "Precision measurement of the W boson mass with {fs} events",
            "Measurement of the weak mixing angle in {fs} events",
            "Observation of electroweak production of {fs}",
        ],
        "observables": ["fiducial cross section", "W boson mass", "sin^2 theta_eff",
                        "forward-backward asymmetry", "pT(Z) spectrum", "W charge asymmetry"],
        "channels": ["Z -> mu mu", "Z -> e e", "W -> mu nu", "W -> e nu", "WZ -> 3l nu",
                     "ZZ -> 4l"],
        "final_states": ["dimuon", "dielectron", "single muon + MET", "three leptons",
                         "same-sign WW + two jets"],
    },
    {
        "name": "SUSY",
        "group": "SUS",
        "keywords": ["supersymmetry", "SUSY", "stop", "gluino", "neutralino", "chargino",
                     "missing transverse momentum", "jets", "RPV", "compressed spectra"],
        "titles": [
            "Search for supersymmetry in events with {fs}",
            "Search for top squark pair production in the {fs} final state",
            "Search for gluinos and squarks with {fs}",
            "Search for electroweakinos in final states with {fs}",
        ],
        "observables": ["upper limit on cross section", "excluded gluino mass",
                        "excluded stop mass", "signal region yields"],
        "channels": ["stop -> t neutralino", "gluino -> q q neutralino",
                     "chargino neutralino -> WZ", "sbottom -> b neutralino"],
        "final_states": ["jets + MET", "one lepton + jets + MET", "two same-sign leptons",
                         "multijet + b-tagged jets", "soft leptons + MET"],
    },
    {
        "name": "dark matter",
        "group": "EXO",
        "keywords": ["dark matter", "mono-jet", "mono-photon", "invisible Higgs", "mediator",
                     "MET", "dark photon", "long-lived particles", "simplified models"],
        "titles": [
            "Search for dark matter produced in association with {fs}",
            "Search for invisible decays of the Higgs boson with {fs}",
            "Search for a dark photon in {fs} events",
            "Search for long-lived particles decaying to {fs}",
        ],
        "observables": ["upper limit on BR(H -> inv)", "excluded mediator mass",
                        "DM-nucleon cross section limit", "upper limit on kinetic mixing"],
        "channels": ["monojet", "mono-photon", "VBF H -> invisible", "Z' -> chi chi",
                     "displaced vertices"],
        "final_states": ["one jet + MET", "photon + MET", "two forward jets + MET",
                         "displaced dimuon", "emerging jets"],
    },
    {
        "name": "exotics",
        "group": "EXO",
        "keywords": ["resonance", "dijet", "Z prime", "W prime", "leptoquark", "excited quark",
                     "heavy neutral lepton", "vector-like quark", "contact interactions"],
        "titles": [
            "Search for new resonances in the {fs} mass spectrum",
            "Search for pair-produced leptoquarks decaying to {fs}",
            "Search for heavy neutral leptons in events with {fs}",
            "Search for vector-like quarks in {fs} final states",
        ],
        "observables": ["upper limit on sigma x BR", "excluded Z' mass", "excluded leptoquark mass",
                        "dijet invariant mass spectrum"],
        "channels": ["Z' -> mu mu", "W' -> e nu", "q* -> q g", "LQ LQ -> b tau b tau",
                     "HNL -> l W"],
        "final_states": ["dijet", "high-mass dilepton", "lepton + MET", "two taus + two b jets",
                         "three leptons"],
    },
    {
        "name": "b physics",
        "group": "BPH",
        "keywords": ["B meson", "rare decays", "Bs -> mu mu", "CP violation", "lepton universality",
                     "quarkonium", "J/psi", "Upsilon", "flavour anomalies"],
        "titles": [
            "Measurement of the Bs -> mu mu branching fraction with {fs}",
            "Test of lepton flavour universality in {fs} decays",
            "Measurement of quarkonium production with {fs}",
        ],
        "observables": ["branching fraction", "effective lifetime", "R(K)",
                        "prompt J/psi cross section", "CP asymmetry"],
        "channels": ["Bs -> mu mu", "B -> K mu mu", "J/psi -> mu mu", "Upsilon(1S) -> mu mu"],
        "final_states": ["dimuon", "dimuon + kaon", "displaced dimuon vertex"],
    },
    {
        "name": "QCD and jets",
        "group": "SMP",
        "keywords": ["jets", "QCD", "alpha_s", "jet substructure", "b-tagging", "PDF",
                     "jet energy scale", "multijet", "underlying event"],
        "titles": [
            "Measurement of inclusive jet cross sections and alpha_s with {fs}",
            "Measurement of jet substructure observables in {fs} events",
            "Measurement of the b jet production cross section with {fs}",
        ],
        "observables": ["inclusive jet cross section", "alpha_s(m_Z)", "groomed jet mass",
                        "jet charge", "azimuthal decorrelation"],
        "channels": ["inclusive jets", "dijet", "Z + jets", "b jets"],
        "final_states": ["inclusive jets", "dijet", "multijet", "Z + b jets"],
    },
]

EXPERIMENTS = ["CMS", "CMS", "CMS", "ATLAS", "ATLAS"]
RUNS = [  # (sqrt(s) TeV, luminosity fb^-1, years)
    (7.0, 5.1, [2011]),
    (8.0, 19.7, [2012]),
    (13.0, 35.9, [2016]),
    (13.0, 41.5, [2017]),
    (13.0, 59.8, [2018]),
    (13.0, 138.0, [2016, 2017, 2018]),
    (13.0, 139.0, [2015, 2016, 2017, 2018]),
    (13.6, 34.7, [2022]),
    (13.6, 62.3, [2022, 2023]),
]
CMS_PD = ["DoubleMuon", "SingleMuon", "DoubleEG", "SingleElectron", "MuonEG", "JetHT", "MET",
          "EGamma", "Tau", "BTagCSV", "Charmonium", "MuOnia"]
CMS_MC = [
    "TTToSemiLeptonic_TuneCP5_13TeV-powheg-pythia8",
    "TTTo2L2Nu_TuneCP5_13TeV-powheg-pythia8",
    "DYJetsToLL_M-50_TuneCP5_13TeV-amcatnloFXFX-pythia8",
    "WJetsToLNu_TuneCP5_13TeV-madgraphMLM-pythia8",
    "GluGluHToZZTo4L_M125_TuneCP5_13TeV_powheg2_JHUGenV7011_pythia8",
    "GluGluHToGG_M125_TuneCP5_13TeV-amcatnloFXFX-pythia8",
    "VBFHToBB_M-125_dipoleRecoilOn_TuneCP5_13TeV-powheg-pythia8",
    "ZZTo4L_TuneCP5_13TeV_powheg_pythia8",
    "WZTo3LNu_TuneCP5_13TeV-amcatnloFXFX-pythia8",
    "QCD_Pt-15to7000_TuneCP5_Flat_13TeV_pythia8",
    "ST_t-channel_top_4f_InclusiveDecays_TuneCP5_13TeV-powheg-madspin-pythia8",
    "SMS-T2tt_mStop-400to1200_TuneCP5_13TeV-madgraphMLM-pythia8",
    "DarkMatter_MonoJ_Vector_TuneCP5_13TeV-madgraph-mcatnlo-pythia8",
    "ZprimeToMuMu_M-5000_TuneCP5_13TeV-pythia8",
]
CMS_CAMPAIGN = {
    2011: ("Run2011A-12Oct2013-v1", "Summer11LegDR-PU_S13_START53_LV6-v1", "AODSIM"),
    2012: ("Run2012B-22Jan2013-v1", "Summer12_DR53X-PU_RD1_START53_V7N-v1", "AODSIM"),
    2015: ("Run2015D-16Dec2015-v1", "RunIIFall15MiniAODv2-PU25nsData2015v1_76X_mcRun2_asymptotic_v12-v1", "MINIAODSIM"),
    2016: ("Run2016G-UL2016_MiniAODv2-v1", "RunIISummer20UL16MiniAODv2-106X_mcRun2_asymptotic_v17-v1", "MINIAODSIM"),
    2017: ("Run2017F-UL2017_MiniAODv2-v1", "RunIISummer20UL17MiniAODv2-106X_mc2017_realistic_v9-v2", "MINIAODSIM"),
    2018: ("Run2018D-UL2018_MiniAODv2-v2", "RunIISummer20UL18MiniAODv2-106X_upgrade2018_realistic_v16_L1v1-v2", "MINIAODSIM"),
    2022: ("Run2022D-27Jun2023-v2", "Run3Summer22MiniAODv4-130X_mcRun3_2022_realistic_v5-v2", "MINIAODSIM"),
    2023: ("Run2023C-22Sep2023_v4-v1", "Run3Summer23MiniAODv4-130X_mcRun3_2023_realistic_v14-v2", "MINIAODSIM"),
}
ATLAS_MC = [
    ("410470", "PhPy8EG_A14_ttbar_hdamp258p75_nonallhad"),
    ("410472", "PhPy8EG_A14_ttbar_hdamp258p75_dil"),
    ("361107", "PowhegPythia8EvtGen_AZNLOCTEQ6L1_Zmumu"),
    ("361106", "PowhegPythia8EvtGen_AZNLOCTEQ6L1_Zee"),
    ("345060", "PowhegPythia8EvtGen_NNLOPS_nnlo_30_ggH125_ZZ4l"),
    ("343981", "PowhegPythia8EvtGen_NNLOPS_nnlo_30_ggH125_gamgam"),
    ("364250", "Sherpa_222_NNPDF30NNLO_llll"),
    ("364253", "Sherpa_222_NNPDF30NNLO_lllv"),
    ("364702", "Pythia8EvtGen_A14NNPDF23LO_jetjet_JZ2WithSW"),
    ("436104", "MGPy8EG_A14N23LO_TT_directTT_600_300"),
]
ATLAS_DERIV = ["DAOD_PHYS", "DAOD_PHYSLITE", "DAOD_TOPQ1", "DAOD_HIGG2D1", "DAOD_SUSY5",
               "DAOD_EXOT2", "DAOD_STDM4", "DAOD_JETM1"]
USAGES = {
    "collision data": ["signal region data", "control region for the main background",
                       "tag-and-probe efficiency measurement", "trigger efficiency studies",
                       "validation of the fake-rate method", "jet energy scale calibration"],
    "simulation": ["nominal signal simulation", "background estimate from simulation",
                   "systematic variation of the parton shower", "pile-up reweighting",
                   "training sample for the signal classifier"],
    "derived": ["derived ntuples used for the final fit", "skimmed events for the control regions",
                "histograms for the statistical model"],
}
ENGINES = [("reana", "reana.yaml"), ("snakemake", "Snakefile"), ("cwl", "workflow/main.cwl"),
           ("yadage", "workflow/steps.yml"), ("serial", "run_all.sh"), ("other", "Makefile")]
WORKFLOW_STEPS = [
    "skims the input datasets into flat ntuples",
    "applies the object selection and event categorisation",
    "fills the histograms in every signal and control region",
    "derives the data-driven background templates",
    "evaluates the systematic uncertainties on the templates",
    "builds the statistical model and runs the profile-likelihood fit",
    "computes expected and observed CLs limits",
    "produces the paper figures and tables",
]
JOURNALS = ["Phys. Rev. Lett.", "Phys. Rev. D", "JHEP", "Eur. Phys. J. C", "Phys. Lett. B",
            "Nature", "Rep. Prog. Phys."]
MEETINGS = ["Physics plenary", "Analysis approval", "Pre-approval", "Working group meeting",
            "LHCP conference", "Moriond EW", "ICHEP", "EPS-HEP", "Top workshop",
            "Higgs Hunting"]
REF_NAMES = ["main", "master", "v1.0.0", "v1.2.3", "v2.0.1", "paper-version", "approval",
             "unblinding", "preapproval-v2"]
REPO_TOOLS = ["selection", "framework", "fit", "limits", "ntupler", "plots", "datacards",
              "systematics", "combine-inputs", "ml-tagger"]
TAGGERS = ["DeepJet", "DeepCSV", "ParticleNet", "DL1r", "GN2", "MV2c10"]
STATUSES = ["planned", "in progress", "in progress", "under review", "published", "published",
            "published", "superseded"]


def orcid(rng: random.Random) -> str:
    """A syntactically valid ORCID iD (ISO 7064 mod 11-2 check digit)."""
    digits = [rng.randrange(10) for _ in range(15)]
    total = 0
    for d in digits:
        total = (total + d) * 2
    check = (12 - total % 11) % 11
    s = "".join(map(str, digits)) + ("X" if check == 10 else str(check))
    return f"{s[0:4]}-{s[4:8]}-{s[8:12]}-{s[12:16]}"


def slug(text: str) -> str:
    out = []
    for ch in text.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def ascii_login(first: str, last: str) -> str:
    base = (first[0] + "." + last).lower()
    table = str.maketrans({"ü": "u", "í": "i", "é": "e", "'": "", " ": ""})
    return base.translate(table).encode("ascii", "ignore").decode()


def make_person(rng: random.Random, role: str) -> dict:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    person = {"name": f"{first} {last}", "email": f"{ascii_login(first, last)}@{rng.choice(INSTITUTES)}"}
    if rng.random() < 0.8:
        person["orcid"] = orcid(rng)
    person["role"] = role
    return person


def cms_dataset(rng: random.Random, year: int, kind: str) -> str:
    data_era, mc_campaign, tier = CMS_CAMPAIGN[year]
    if kind == "collision data":
        return f"/{rng.choice(CMS_PD)}/{data_era}/{tier[:-3]}"
    sample = rng.choice(CMS_MC)
    if year >= 2022:
        sample = sample.replace("13TeV", "13p6TeV")
    elif year <= 2012:
        sample = sample.replace("13TeV", "7TeV" if year == 2011 else "8TeV").replace("CP5", "Z2star")
    return f"/{sample}/{mc_campaign}/{tier}"


def atlas_dataset(rng: random.Random, year: int, kind: str) -> str:
    yy = year % 100
    energy = "13p6TeV" if year >= 2022 else ("8TeV" if year == 2012 else ("7TeV" if year == 2011 else "13TeV"))
    p_tag = f"p{rng.randrange(3000, 6000)}"
    if kind == "collision data":
        return (f"data{yy}_{energy}.periodAllYear.physics_Main.PhysCont."
                f"{rng.choice(ATLAS_DERIV)}.grp{yy}_v01_{p_tag}")
    dsid, name = rng.choice(ATLAS_MC)
    mc = "mc21" if year >= 2022 else ("mc12" if year <= 2012 else "mc16")
    return (f"{mc}_{energy}.{dsid}.{name}.deriv.{rng.choice(ATLAS_DERIV)}."
            f"e{rng.randrange(3000, 8000)}_s{rng.randrange(3000, 4000)}_r{rng.randrange(9000, 14000)}_{p_tag}")


def make_dataset(rng: random.Random, experiment: str, year: int) -> dict:
    kind = rng.choices(["collision data", "simulation", "derived"], weights=[3, 5, 1])[0]
    if kind == "derived":
        name = (f"/store/group/phys_{rng.choice(['higgs', 'top', 'smp', 'susy', 'exotica', 'bphys'])}/"
                f"ntuples/{year}/v{rng.randrange(1, 12)}/skim_{rng.getrandbits(32):08x}.root")
    elif experiment == "ATLAS":
        name = atlas_dataset(rng, year, kind)
    else:
        name = cms_dataset(rng, year, kind)
    ds = {"name": name, "type": kind, "year": year}
    if kind != "derived" and rng.random() < 0.5:
        ds["doi"] = f"10.7483/OPENDATA.{experiment}.{rng.getrandbits(40):010X}"
    ds["usage"] = rng.choice(USAGES[kind])
    return ds


def make_date(rng: random.Random, year: int) -> str:
    return f"{year:04d}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"


def make_deposit(seed: int, index: int) -> tuple[str, dict]:
    rng = random.Random(seed * 10_000_019 + index)
    dep_id = f"ana-{index:06d}"
    experiment = rng.choice(EXPERIMENTS)
    topic = rng.choice(TOPICS)
    sqrt_s, lumi, years = rng.choice(RUNS)
    final_state = rng.choice(topic["final_states"])
    title = rng.choice(topic["titles"]).format(fs=final_state)
    title += f" at sqrt(s) = {sqrt_s:g} TeV"
    analysis_code = f"{experiment}-{topic['group']}-{years[-1] % 100:02d}-{rng.randrange(1, 999):03d}"
    status = rng.choice(STATUSES)
    last_year = years[-1] + rng.randrange(1, 4)

    n_people = rng.randint(2, 6)
    people = [make_person(rng, "contact person")]
    people += [make_person(rng, rng.choice(ROLES[1:])) for _ in range(n_people - 1)]

    keywords = [experiment, topic["name"]]
    for kw in rng.sample(topic["keywords"], k=min(len(topic["keywords"]), rng.randint(3, 7))):
        if kw not in keywords:
            keywords.append(kw)
    if rng.random() < 0.3:
        tagger = f"{rng.choice(TAGGERS)} b-tagging"
        if tagger not in keywords:
            keywords.append(tagger)
    keywords.append(f"{sqrt_s:g} TeV")

    measurements = []
    for _ in range(rng.randint(1, 3)):
        measurements.append({
            "observable": rng.choice(topic["observables"]),
            "channel": rng.choice(topic["channels"]),
            "final_state": rng.choice(topic["final_states"]),
            "sqrt_s_tev": sqrt_s,
            "luminosity_fb": lumi,
        })

    datasets = [make_dataset(rng, experiment, rng.choice(years)) for _ in range(rng.randint(2, 6))]

    group = slug(topic["name"])
    repo_base = ("https://gitlab.cern.ch/" + experiment.lower() + "-analysis/" + group
                 if rng.random() < 0.8 else "https://github.com/" + experiment.lower() + "-" + group)
    short = analysis_code.lower()
    repositories = []
    for tool in rng.sample(REPO_TOOLS, k=rng.randint(1, 3)):
        repo = {
            "url": f"{repo_base}/{short}-{tool}",
            "ref": rng.choice(REF_NAMES),
            "commit": f"{rng.getrandbits(160):040x}",
        }
        if rng.random() < 0.4:
            repo["description"] = f"The {tool} code of {analysis_code}."
        repositories.append(repo)

    workflows = []
    for wf_kind in rng.sample(["full", "fit", "stats", "plots", "skim"], k=rng.randint(1, 2)):
        engine, wf_file = rng.choice(ENGINES)
        steps = rng.sample(WORKFLOW_STEPS, k=rng.randint(2, 4))
        workflows.append({
            "name": f"{short}-{wf_kind}",
            "engine": engine,
            "file": wf_file,
            "description": f"The {engine} workflow " + ", then ".join(steps) + ".",
        })

    presentations = []
    for _ in range(rng.randint(1, 4)):
        event = rng.randrange(700_000, 1_400_000)
        presentations.append({
            "title": f"{rng.choice(MEETINGS)}: {analysis_code}",
            "url": f"https://indico.cern.ch/event/{event}/contributions/{event * 7 + rng.randrange(1000)}/",
            "date": make_date(rng, rng.choice(years + [last_year])),
        })

    additional = {"presentations": presentations}
    if status in ("published", "superseded"):
        arxiv_year = last_year % 100
        additional["publications"] = [{
            "title": title,
            "doi": f"10.{rng.choice(['1103/PhysRevLett', '1103/PhysRevD', '1007/JHEP', '1140/epjc'])}.{rng.randrange(100000, 999999)}",
            "arxiv": f"{arxiv_year:02d}{rng.randrange(1, 13):02d}.{rng.randrange(1, 30000):05d}",
            "journal": rng.choice(JOURNALS),
        }]
    notes = []
    for k in range(rng.randint(1, 3)):
        note_id = (f"AN-{years[-1]}/{rng.randrange(1, 600):03d}" if experiment == "CMS"
                   else f"ATL-COM-PHYS-{years[-1]}-{rng.randrange(1, 1500):03d}")
        notes.append({
            "title": f"{'Analysis note' if k == 0 else 'Supporting note'} for {analysis_code}",
            "url": f"https://cms.cern.ch/iCMS/jsp/db_notes/noteInfo.jsp?cmsnoteid=CMS%20{note_id}"
            if experiment == "CMS" else f"https://cds.cern.ch/record/{rng.randrange(2_000_000, 2_900_000)}",
            "id": note_id,
        })
    additional["internal_notes"] = notes

    owner = rng.choice(["alice", "bob"])
    reader_emails = sorted({p["email"] for p in people[1:]})
    deposit = {
        "$schema": SCHEMA_REF,
        "general_title": title,
        "basic_info": {
            "analysis_name": analysis_code,
            "status": status,
            "people_info": people,
            "keywords": keywords,
            "measurements": measurements,
        },
        "data_provenance": {"input_datasets": datasets},
        "analysis_software": {"repositories": repositories, "workflows": workflows},
        "additional_resources": additional,
        "_deposit": {"owners": [owner]},
        "_access": {
            "deposit-read": {"users": [owner] + reader_emails,
                             "roles": ["cms-members"] if rng.random() < 0.7 else []},
            "deposit-update": {"users": [owner, people[0]["email"]], "roles": []},
            "deposit-admin": {"users": [owner], "roles": []},
        },
    }
    return dep_id, deposit


def shard(dep_id: str) -> str:
    """The deposit's shard folder, as capsule's deposit::shard computes it."""
    return hashlib.sha256(dep_id.encode("utf-8")).hexdigest()[:2]


def write_range(args: tuple) -> int:
    out_dir, seed, start, stop = args[:4]
    public = len(args) > 4 and args[4]
    deposits = os.path.join(out_dir, "deposits")
    total = 0
    for i in range(start, stop):
        dep_id, deposit = make_deposit(seed, i)
        if public:
            deposit["_access"]["deposit-read"]["roles"].append("public")
        text = json.dumps(deposit, indent=2, ensure_ascii=False) + "\n"
        data = text.encode("utf-8")
        d = os.path.join(deposits, shard(dep_id), dep_id)
        os.makedirs(d)
        with open(os.path.join(d, "deposit.json"), "wb") as f:
            f.write(data)
        total += len(data)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--deposits", type=int, required=True, metavar="N")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA,
                    help=f"schema to copy to schemas/analysis/1.0.0.json (default {DEFAULT_SCHEMA})")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes (output does not depend on it)")
    ap.add_argument("--public", action="store_true",
                    help="make every deposit readable by everyone (for public site builds)")
    args = ap.parse_args()

    # Ids are ana-000001 .. ana-NNNNNN (at least six digits; 1,000,000 takes seven).
    if args.deposits < 0 or args.deposits > 9_999_999:
        ap.error("--deposits must be between 0 and 9999999")
    if not args.schema.is_file():
        print(f"gen_archive: schema not found: {args.schema}", file=sys.stderr)
        return 2
    out = args.out_dir
    if out.exists() and any(out.iterdir()):
        print(f"gen_archive: {out} exists and is not empty", file=sys.stderr)
        return 2

    started = time.perf_counter()
    (out / "schemas" / "analysis").mkdir(parents=True, exist_ok=True)
    (out / "deposits").mkdir(exist_ok=True)
    (out / "capsule.toml").write_text(CAPSULE_TOML, encoding="utf-8")
    (out / "access.toml").write_text(ACCESS_TOML, encoding="utf-8")
    shutil.copyfile(args.schema, out / "schemas" / "analysis" / "1.0.0.json")

    n = args.deposits
    chunk = 2000
    tasks = [(str(out), args.seed, s, min(s + chunk, n + 1), args.public)
             for s in range(1, n + 1, chunk)]
    jobs = max(1, min(args.jobs, len(tasks)))
    if jobs == 1:
        total = sum(map(write_range, tasks))
    else:
        with multiprocessing.Pool(jobs) as pool:
            total = sum(pool.imap_unordered(write_range, tasks))

    elapsed = time.perf_counter() - started
    avg = total / n if n else 0
    print(f"{n} deposits in {out}, {total / 1e6:.1f} MB, {avg:.0f} B/deposit, {elapsed:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
