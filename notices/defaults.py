"""The texts the library ships with: version 1 of each template, written by ensure_templates()
the first time the library is used (tests empty every table, so they live in code)."""
from flask_babel import lazy_gettext as _l

STAGES = {
    "reminder": _l("Reminders"),
    "monitoring": _l("Monitoring"),
    "collection": _l("Collection"),
    "legal": _l("Legal action"),
    "extension": _l("Extensions"),
    "closure": _l("Closure"),
}
STAGE_ORDER = tuple(STAGES)

CHANNEL_LABELS = {"sms": _l("SMS"), "letter": _l("Letter")}

NAMES = {
    "due_reminder": _l("Due-date reminder"),
    "early_recall": _l("Early recall notice"),
    "collection_notice": _l("Written collection notice"),
    "guarantor_demand": _l("Demand to the guarantor"),
    "lawyers_letter": _l("Lawyer's letter"),
    "extension_approved": _l("Extension approved"),
    "extension_rejected": _l("Extension not granted"),
    "closure_invitation": _l("Invitation to close the file"),
}

# key -> (channel, stage, subject_zh, subject_en, body_zh, body_en)
DEFAULTS = {
    "due_reminder": (
        "sms", "reminder", "", "",
        "【{lender_name}】尊敬的{borrower_name}：您的贷款{loan_no}将于{due_date}到期，应还"
        "{amount}，请确保还款账户{repayment_account}余额充足。如已还款请忽略。咨询电话"
        "{lender_phone}。",
        "[{lender_name}] Dear {borrower_name}, your loan {loan_no} is due on {due_date}: "
        "{amount}. Please make sure the repayment account {repayment_account} holds enough. "
        "Ignore this if you have paid. Questions: {lender_phone}."),
    "early_recall": (
        "sms", "monitoring", "", "",
        "【{lender_name}贷款提前收回通知】尊敬的{borrower_name}：根据借款合同约定，贷款{loan_no}"
        "将提前收回，贷款余额{outstanding}，客户经理将与您联系，请做好还款安排。咨询电话"
        "{lender_phone}。",
        "[{lender_name} early recall] Dear {borrower_name}, under the loan contract the loan "
        "{loan_no} is recalled early; the balance of {outstanding} falls due. Your account "
        "manager will contact you. Questions: {lender_phone}."),
    "collection_notice": (
        "letter", "collection", "书面催收通知书", "Written collection notice",
        "{borrower_name}：\n\n您在我公司的借款（贷款编号{loan_no}）已逾期{dpd}天，截至{today}"
        "逾期未还金额为{overdue_amount}，贷款余额为{outstanding}。\n\n请您在收到本通知后立即"
        "将上述逾期款项存入还款账户{repayment_account}。逾期期间我公司将按合同约定计收罚息，"
        "并保留依法追究的权利。\n\n请在回执上签字确认收到本通知。如有疑问，请致电"
        "{lender_phone}。",
        "To {borrower_name},\n\nYour loan {loan_no} with us is {dpd} days past due. On {today} "
        "the amount overdue is {overdue_amount}; the balance of the loan is {outstanding}.\n\n"
        "Please pay the overdue amount into the repayment account {repayment_account} as soon "
        "as you receive this notice. Penalty interest runs as the contract provides, and we "
        "reserve every legal remedy.\n\nPlease sign the receipt to confirm you received this "
        "notice. Questions: {lender_phone}."),
    "guarantor_demand": (
        "letter", "collection", "保证人代偿催收函", "Demand to the guarantor",
        "致保证人{guarantor_name}：\n\n借款人{borrower_name}在我公司的借款（贷款编号{loan_no}）"
        "已逾期，截至{today}逾期未还金额为{amount}。\n\n根据您签署的保证合同，请于{deadline}前"
        "代借款人偿还上述款项。逾期不履行的，我公司将依法追究您的保证责任。\n\n联系电话："
        "{lender_phone}。",
        "To the guarantor {guarantor_name},\n\nThe loan {loan_no} of {borrower_name} is "
        "overdue; the amount overdue on {today} is {amount}.\n\nUnder the guarantee you "
        "signed, please pay it on the borrower's behalf by {deadline}. Otherwise we will "
        "enforce the guarantee by law.\n\nContact: {lender_phone}."),
    "lawyers_letter": (
        "letter", "legal", "律师函", "Lawyer's letter",
        "{borrower_name}：\n\n受{lender_name}委托，就您的借款（贷款编号{loan_no}）逾期一事致函"
        "如下：截至{today}，您已逾期{dpd}天，逾期未还金额为{overdue_amount}，贷款余额为"
        "{outstanding}。\n\n请您于{deadline}前清偿全部逾期款项。逾期未清偿的，委托人将依法向"
        "人民法院提起诉讼并申请财产保全，由此产生的诉讼费、律师费等费用由您承担。\n\n"
        "联系电话：{lender_phone}。",
        "To {borrower_name},\n\nOn behalf of {lender_name}, concerning your overdue loan "
        "{loan_no}: on {today} it is {dpd} days past due, the amount overdue is "
        "{overdue_amount} and the balance is {outstanding}.\n\nPlease pay everything overdue "
        "by {deadline}. Otherwise our client will sue before the people's court and apply to "
        "preserve your assets; the court and legal costs will be yours.\n\n"
        "Contact: {lender_phone}."),
    "extension_approved": (
        "letter", "extension", "展期申请审批结果通知书", "Decision on your extension request",
        "{borrower_name}：\n\n您就贷款{loan_no}提出的展期申请已获批准。贷款到期日由"
        "{old_maturity_date}变更为{new_maturity_date}，展期期间年利率为{new_rate}。\n\n"
        "请按新的还款计划按时还款，还款账户：{repayment_account}。如有疑问，请致电"
        "{lender_phone}。",
        "To {borrower_name},\n\nYour request to extend the loan {loan_no} is approved. The "
        "maturity date moves from {old_maturity_date} to {new_maturity_date}; the yearly rate "
        "of the extension is {new_rate}.\n\nPlease repay on the new schedule into the account "
        "{repayment_account}. Questions: {lender_phone}."),
    "extension_rejected": (
        "letter", "extension", "展期申请审批结果通知书", "Decision on your extension request",
        "{borrower_name}：\n\n经审核，您就贷款{loan_no}提出的展期申请未获批准。贷款仍于"
        "{maturity_date}到期，请按原还款计划按时足额还款，还款账户：{repayment_account}。\n\n"
        "如有疑问，请致电{lender_phone}。",
        "To {borrower_name},\n\nYour request to extend the loan {loan_no} was not granted. "
        "The loan still matures on {maturity_date}; please repay on the original schedule "
        "into the account {repayment_account}.\n\nQuestions: {lender_phone}."),
    "closure_invitation": (
        "sms", "closure", "", "",
        "【{lender_name}】尊敬的{borrower_name}：您的贷款{loan_no}已结清。请于{appointment_date}"
        "{appointment_time}到{appointment_place}办理结清手续（核对资料、取回或销毁合同），"
        "请携带身份证件。咨询电话{lender_phone}。",
        "[{lender_name}] Dear {borrower_name}, your loan {loan_no} is paid off. Please come "
        "to {appointment_place} on {appointment_date} at {appointment_time} to close the file "
        "(check the documents, take back or destroy the contract); bring your ID. "
        "Questions: {lender_phone}."),
}
