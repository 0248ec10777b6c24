"""The demo's people beyond demo.py's: a second department head and collector, the two teams,
and the history's borrowers with Chinese names made from seeded draws of name lists."""
from accounts.models import Team, User
from accounts.operations import create_user
from workflows import clock
from workflows.clock import BEIJING

# user name -> (roles, display name)
NEW_USERS = {"dept_head2": (["dept_head"], "沈国平"), "collector2": (["collector"], "马骏")}
# Each team: its leader, account manager, collector, post-loan officer and back office.
TEAMS = {"one": {"name": "杭州一部", "leader": "dept_head", "account_manager": "account_manager",
                 "collector": "collector", "post_loan_officer": "post_loan_officer",
                 "back_office": "back_office", "members": ["dual"]},
         "two": {"name": "杭州二部", "leader": "dept_head2", "account_manager": "account_manager2",
                 "collector": "collector2", "post_loan_officer": "post_loan_officer2",
                 "back_office": "back_office", "members": []}}

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余"
            "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史"
            "陶黎贺顾毛郝龚邵万钱严武戴莫孔汤")
GIVEN = ("伟", "芳", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
         "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "文", "华", "红", "志强",
         "海燕", "晓东", "国庆", "丹", "萍", "鹏", "辉", "玲", "宇", "浩", "凯", "婷", "雪",
         "慧", "俊", "斌", "亮", "晨", "欣", "佳怡", "峰", "琳", "建国", "立新", "春梅", "晓燕",
         "永强", "子豪", "雨涵", "思远", "嘉伟", "美华", "德明")
CITIES = ("杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水",
          "义乌", "余姚", "慈溪", "诸暨", "海宁")
BRANDS = ("鑫源", "恒达", "华茂", "盛泰", "永利", "宏远", "金鼎", "瑞丰", "联创", "天成", "兴业",
          "汇通", "博远", "嘉禾", "正源", "新航", "东信", "万隆", "中联", "信和", "佳旺", "美途")
TRADES = ("纺织", "机械", "电器", "建材", "五金", "物流", "食品", "包装", "服饰", "化工",
          "汽配", "家具", "电子", "印染", "茶业", "塑料", "轴承", "阀门")
DISTRICTS = ("西湖区文三路", "拱墅区莫干山路", "余杭区文一西路", "萧山区市心中路",
             "鄞州区天童南路", "瓯海区温州大道", "南湖区中山东路", "越城区解放北路",
             "婺城区八一北街", "椒江区市府大道")
RELATIONS = (("配偶", True), ("父亲", True), ("母亲", True), ("兄弟", False), ("同事", False),
             ("朋友", False))


def new_users(password):
    """The second department head and collector (once)."""
    for username, (roles, name) in NEW_USERS.items():
        if User.query.filter_by(username=username).first() is None:
            create_user(username, password, roles, display_name=name)


def set_up_teams(actor):
    """The two teams, through the team operations (once)."""
    from accounts.teams import create_team, set_members
    from scorecards.targets import set_target
    for team in TEAMS.values():
        if Team.query.filter_by(name=team["name"]).first() is not None:
            continue
        users = {u.username: u for u in User.query}
        created = create_team(team["name"], users[team["leader"]], actor)
        members = [team[k] for k in ("account_manager", "collector", "post_loan_officer")]
        set_members(created, [users[team["leader"]]] +
                    [users[m] for m in members + team["members"] if m in users], actor)
        # The leader's daily targets for the team's collector, from the team's first day on
        set_target(users[team["collector"]], clock.now().astimezone(BEIJING).date(),
                   calls=12, contacts=6, promises=2, amount="20000", actor=users[team["leader"]])


def person_name(rng):
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _phone(rng):
    return f"1{rng.choice('3578')}{rng.randrange(10)}{rng.randrange(10 ** 8):08d}"


def borrower_party(rng, taken, n):
    """Borrower, contacts, guarantors and collateral of the n-th history loan: a third are
    companies (a mortgage, a guarantor), the others people (two contacts, sometimes a
    guarantor). `taken`: names used so far (kept unique)."""
    company = rng.random() < 0.35
    while True:
        name = (rng.choice(CITIES) + rng.choice(BRANDS) + rng.choice(TRADES) + "有限公司"
                if company else person_name(rng))
        if name not in taken:
            taken.add(name)
            break
    address = f"浙江省{rng.choice(CITIES)}市{rng.choice(DISTRICTS)}{rng.randint(1, 999)}号"
    party = {"borrower_name": name,
             "borrower": {"kind": "company" if company else "person", "name": name,
                          "phones": [_phone(rng)], "addresses": [address]},
             "contacts": [], "guarantors": [], "collateral": []}
    guarantors = party["guarantors"]
    if company:
        guarantors.append({"kind": "person", "name": person_name(rng), "phone": _phone(rng),
                           "address": address})
        party["collateral"].append({
            "kind": "mortgage", "description": rng.choice(("厂房", "商铺", "办公楼", "仓库")),
            "location": address, "registration_no": f"浙({2025}){rng.choice(CITIES)}不动产第"
                                                    f"{n + 10001:07d}号"})
    else:
        for relation, knows in rng.sample(RELATIONS, 2):
            party["contacts"].append({"name": person_name(rng), "relationship": relation,
                                      "phone": _phone(rng), "knows_about_loan": knows})
        if rng.random() < 0.3:
            guarantors.append({"kind": "person", "name": person_name(rng),
                               "phone": _phone(rng)})
    return party
